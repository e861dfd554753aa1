#!/usr/bin/env python3
"""An independent OCI client (the `oras` package from PyPI) on imprint's artifacts.

  oras_interop.py pull REF OUTDIR
      pulls an artifact imprint pushed; files land under their title annotations.
  oras_interop.py push REPO:TAG SUBJECT_DIGEST SUBJECT_SIZE PROFILE_JSON PROFILE_TGZ
      pushes a profile artifact built here (oras-py's push() cannot set
      artifactType, so the manifest is written by hand from the OCI spec).
"""
import hashlib
import json
import os
import sys
import tempfile

import oras.client
import oras.container


def client_for(ref):
    return oras.client.OrasClient(hostname=ref.split("/")[0], insecure=True)


def descriptor(media_type, path, title=None):
    data = open(path, "rb").read()
    d = {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}
    if title:
        d["annotations"] = {"org.opencontainers.image.title": title}
    return d


def pull(ref, outdir):
    files = client_for(ref).pull(target=ref, outdir=outdir,
                                 allowed_media_type=["application/vnd.oci.image.manifest.v1+json"])
    for f in files:
        print(os.path.relpath(f, outdir))


def push(ref, subject_digest, subject_size, profile_json, profile_tgz):
    client = client_for(ref)
    container = client.get_container(ref)
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "config.json")
        open(config, "wb").write(b"{}")
        cfg = descriptor("application/vnd.oci.empty.v1+json", config)
        layers = [
            descriptor("application/vnd.imprint.profile.v1+json", profile_json, "profile.json"),
            descriptor("application/vnd.oci.image.layer.v1.tar+gzip", profile_tgz, "profile.tar.gz"),
        ]
        for path, d in [(config, cfg), (profile_json, layers[0]), (profile_tgz, layers[1])]:
            r = client.upload_blob(path, container, d)
            r.raise_for_status()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.imprint.profile.v1+json",
            "config": cfg,
            "layers": layers,
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": subject_digest, "size": int(subject_size)},
        }
        r = client.upload_manifest(manifest, container)
        r.raise_for_status()


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"pull": pull, "push": push}[cmd](*args)
