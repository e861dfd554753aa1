#!/usr/bin/env python3
"""Fetches a profile artifact the way Flux's source-controller does for an
OCIRepository with `ref.digest`, `verify.provider: cosign` (a public key) and
`layerSelector: {mediaType: application/vnd.oci.image.layer.v1.tar+gzip,
operation: extract}`: resolve the manifest by digest, verify the cosign
signature in the `sha256-<hex>.sig` tag with the key, then extract the selected
layer. Independent of imprint's own code: the registry's HTTP API, hashlib,
tarfile and the `cryptography` package.

usage: flux_fetch.py REGISTRY REPOSITORY ARTIFACT_DIGEST PUBLIC_KEY_PEM OUT_DIR
Exit 0 with the extracted files listed; 1 with the reason otherwise.
"""
import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.error

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

# The registry GET and the ECDSA/Ed25519 check of the other independent verifier.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../cli/tests/interop"))
from verify_cosign import get, verify  # noqa: E402

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
SIGNATURE = "dev.cosignproject.cosign/signature"


def blob(base, digest):
    data = get(f"{base}/blobs/{digest}")
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise SystemExit(f"blob {digest}: content does not match its digest")
    return data


def main():
    registry, repository, digest, key_path, out = sys.argv[1:6]
    base = f"http://{registry}/v2/{repository}"
    key = serialization.load_pem_public_key(open(key_path, "rb").read())

    body = get(f"{base}/manifests/{digest}", MANIFEST)
    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise SystemExit(f"manifest {digest}: content does not match its digest")
    manifest = json.loads(body)

    # cosign verify --key: one simple-signing layer that verifies and names this digest.
    tag = digest.replace(":", "-") + ".sig"
    try:
        signatures = json.loads(get(f"{base}/manifests/{tag}", MANIFEST))
    except urllib.error.HTTPError as e:
        raise SystemExit(f"no signature ({tag}: HTTP {e.code})")
    verified = False
    for layer in signatures.get("layers", []):
        signature = layer.get("annotations", {}).get(SIGNATURE)
        if not signature:
            continue
        payload = blob(base, layer["digest"])
        try:
            verify(key, payload, base64.b64decode(signature))
        except InvalidSignature:
            continue
        named = json.loads(payload)["critical"]["image"]["docker-manifest-digest"]
        if named == digest:
            verified = True
            break
    if not verified:
        raise SystemExit(f"{digest}: no signature verifies with {key_path}")

    # layerSelector: the first layer of the media type, extracted.
    selected = [l for l in manifest["layers"] if l["mediaType"] == LAYER]
    if not selected:
        raise SystemExit(f"{digest}: no {LAYER} layer")
    archive = tarfile.open(fileobj=io.BytesIO(blob(base, selected[0]["digest"])), mode="r:gz")
    archive.extractall(out, filter="data")
    for name in archive.getnames():
        print(name)


if __name__ == "__main__":
    main()
