#!/usr/bin/env python3
"""Writes N distinct copies of an image in a Cairn store (an OCI layout): the same layers, a
label `bench.fleet/variant` each, named HOST/team-{a,b,c}/.../vI in index.json. Prints the names.
Used by bench/fleet.sh; the store is not in use while it runs."""
import hashlib, json, os, sys

store, source, host, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def blob(digest): return os.path.join(store, "blobs", *digest.split(":"))
def put(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blob(digest)
    if not os.path.exists(path):
        with open(path + ".tmp", "wb") as f: f.write(data)
        os.rename(path + ".tmp", path)
    return digest
index = json.load(open(os.path.join(store, "index.json")))
entry = next(m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == source)
manifest = json.load(open(blob(entry["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))
repos = ["team-a/web", "team-b/api", "team-c/worker"]
for i in range(count):
    config.setdefault("config", {}).setdefault("Labels", {})["bench.fleet/variant"] = str(i)
    data = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    m = dict(manifest, config=dict(manifest["config"], digest=put(data), size=len(data)))
    mdata = json.dumps(m, separators=(",", ":"), sort_keys=True).encode()
    name = f"{host}/{repos[i % 3]}:v{i}"
    index["manifests"].append({"mediaType": m.get("mediaType", "application/vnd.oci.image.manifest.v1+json"),
                               "digest": put(mdata), "size": len(mdata), "annotations": {"org.opencontainers.image.ref.name": name}})
    print(name)
tmp = os.path.join(store, "index.json.tmp")
with open(tmp, "w") as f: json.dump(index, f)
os.rename(tmp, os.path.join(store, "index.json"))
