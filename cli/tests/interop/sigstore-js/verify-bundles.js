// An independent verifier (sigstore-js) of the bundle referrers imprint writes.
//
// usage: node verify-bundles.js REGISTRY REPOSITORY ARTIFACT_DIGEST PUBLIC_KEY_PEM
//
// Lists the artifact's referrers through the OCI 1.1 fallback tag (the test
// registry has no referrers API), fetches every sigstore bundle v0.3 among them and
// verifies it with @sigstore/verify against the public key: a key-based bundle with
// no transparency-log entry, so the thresholds are 0. Exit 0 when at least one
// bundle was found and all verify; 1 otherwise.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';

async function get(url, accept) {
  const response = await fetch(url, { headers: accept ? { Accept: accept } : {} });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

async function main() {
  const [registry, repository, digest, keyFile] = process.argv.slice(2);
  const base = `http://${registry}/v2/${repository}`;
  const publicKey = crypto.createPublicKey(fs.readFileSync(keyFile));
  const root = TrustedRoot.fromJSON({
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [],
  });
  const keys = () => ({ publicKey, validFor: () => true });
  const verifier = new Verifier(toTrustMaterial(root, keys), {
    tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0,
  });
  const index = JSON.parse(await get(`${base}/manifests/${digest.replace(':', '-')}`, INDEX));
  let verified = 0;
  for (const entry of index.manifests) {
    const manifest = JSON.parse(await get(`${base}/manifests/${entry.digest}`, MANIFEST));
    if (manifest.artifactType !== BUNDLE) continue;
    if (manifest.subject.digest !== digest) throw new Error(`${entry.digest}: subject is another artifact`);
    const bundle = bundleFromJSON(JSON.parse(await get(`${base}/blobs/${manifest.layers[0].digest}`)));
    verifier.verify(toSignedEntity(bundle));
    const statement = JSON.parse(Buffer.from(bundle.content.dsseEnvelope.payload, 'base64'));
    if (statement.subject[0].digest.sha256 !== digest.split(':')[1]) {
      throw new Error(`${entry.digest}: the statement is about another artifact`);
    }
    console.log(`bundle verified: ${entry.digest} (${statement.predicateType})`);
    verified++;
  }
  if (verified === 0) throw new Error('no bundle found');
}

main().catch((e) => { console.error(`verify-bundles: ${e.message}`); process.exit(1); });
