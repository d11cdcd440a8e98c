#!/usr/bin/env python3
"""Wraps the manifest tagged SRC_TAG of an OCI layout in an image index tagged DST_TAG, listing
it for the given platforms (os/arch), as multi-arch images are published. Offline; for tests.
  make_index.py LAYOUT SRC_TAG DST_TAG linux/arm64 linux/amd64 ...
"""
import hashlib
import json
import os
import sys

layout, src_tag, dst_tag, *platforms = sys.argv[1:]
with open(os.path.join(layout, "index.json")) as f:
    top = json.load(f)
src = next(m for m in top["manifests"]
           if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == src_tag)
entries = []
for p in platforms:
    os_name, arch = p.split("/")
    entries.append({"mediaType": src["mediaType"], "digest": src["digest"], "size": src["size"],
                    "platform": {"os": os_name, "architecture": arch}})
index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": entries}).encode()
digest = hashlib.sha256(index).hexdigest()
with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
    f.write(index)
top["manifests"] = [m for m in top["manifests"]
                    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != dst_tag]
top["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json",
                         "digest": "sha256:" + digest, "size": len(index),
                         "annotations": {"org.opencontainers.image.ref.name": dst_tag}})
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump(top, f)
print("sha256:" + digest)
