#!/usr/bin/env python3
"""An independent verifier of what `imprint sign` and `imprint attest` write.

Reads cosign's tags straight from the registry's HTTP API and checks them with the
`cryptography` package: the simple-signing payload's signature and digest, and the
DSSE envelope's signature over its PAE and the statement's subject. Exit 0 when
both verify, 1 with the reason otherwise.

usage: verify_cosign.py REGISTRY REPOSITORY ARTIFACT_DIGEST PUBLIC_KEY_PEM
"""
import base64
import hashlib
import json
import sys
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def get(url, accept=None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def verify(key, message, signature):
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(signature, message)
    else:
        raise SystemExit(f"unsupported key {type(key)}")


def pae(payload_type, payload):
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def main():
    registry, repository, digest, key_file = sys.argv[1:5]
    key = serialization.load_pem_public_key(open(key_file, "rb").read())
    base = f"http://{registry}/v2/{repository}"
    tag = digest.replace(":", "-")

    def layers(suffix):
        manifest = json.loads(get(f"{base}/manifests/{tag}.{suffix}", MANIFEST))
        for layer in manifest["layers"]:
            blob = get(f"{base}/blobs/{layer['digest']}")
            if "sha256:" + hashlib.sha256(blob).hexdigest() != layer["digest"]:
                raise SystemExit(f"{suffix}: blob digest mismatch")
            yield layer, blob

    for layer, payload in layers("sig"):
        signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
        try:
            verify(key, payload, signature)
        except InvalidSignature:
            raise SystemExit("sig: signature does not verify")
        signed = json.loads(payload)["critical"]["image"]["docker-manifest-digest"]
        if signed != digest:
            raise SystemExit(f"sig: payload names {signed}, not {digest}")
        print(f"signature verified: {layer['digest']}")

    for layer, blob in layers("att"):
        envelope = json.loads(blob)
        payload = base64.b64decode(envelope["payload"])
        try:
            verify(key, pae(envelope["payloadType"], payload), base64.b64decode(envelope["signatures"][0]["sig"]))
        except InvalidSignature:
            raise SystemExit("att: DSSE signature does not verify")
        statement = json.loads(payload)
        if statement["subject"][0]["digest"]["sha256"] != digest.split(":")[1]:
            raise SystemExit("att: statement is about another artifact")
        print(f"attestation verified: {statement['predicateType']}")


if __name__ == "__main__":
    main()
