#!/usr/bin/env python3
"""Validate an OCI image layout against the image-spec JSON schemas.

Usage: validate_oci_layout.py SCHEMA_DIR LAYOUT_DIR
Checks oci-layout, index.json and, recursively, every index/manifest/config it reaches.
Prints one line per problem and exits 1 if any; prints the number of documents checked otherwise.
"""
import json, os, sys
import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

schema_dir, layout = sys.argv[1], sys.argv[2]
def strip_ids(node):
    # The schemas' draft-04 "id"s would rebase relative $refs onto opencontainers.org URLs;
    # without them, "defs.json" resolves against the file names registered below.
    if isinstance(node, dict):
        return {k: strip_ids(v) for k, v in node.items()
                if not (k == "id" and isinstance(v, str) and v.startswith("https://opencontainers.org"))}
    if isinstance(node, list):
        return [strip_ids(v) for v in node]
    return node

resources = []
for name in os.listdir(schema_dir):
    if name.endswith(".json"):
        with open(os.path.join(schema_dir, name)) as f:
            doc = strip_ids(json.load(f))
        resources.append((name, Resource(contents=doc, specification=DRAFT4)))
registry = Registry().with_resources(resources)

def validator(schema_name):
    schema = registry.contents(schema_name)
    return jsonschema.Draft4Validator(schema, registry=registry, format_checker=jsonschema.FormatChecker())

checks = {
    "layout": validator("image-layout-schema.json"),
    "index": validator("image-index-schema.json"),
    "manifest": validator("image-manifest-schema.json"),
    "config": validator("config-schema.json"),
}
problems = []
checked = 0

def check(kind, path):
    global checked
    if not os.path.exists(path):
        problems.append(f"{path} ({kind}): missing")
        return {"manifests": [], "config": {"digest": "sha256:missing"}}
    with open(path, "rb") as f:
        doc = json.loads(f.read())
    checked += 1
    for err in checks[kind].iter_errors(doc):
        problems.append(f"{path} ({kind}): {err.message} at {'/'.join(map(str, err.absolute_path))}")
    return doc

def blob(digest):
    algo, enc = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, enc)

def walk(desc):
    mt = desc["mediaType"]
    if mt in ("application/vnd.oci.image.index.v1+json",):
        for d in check("index", blob(desc["digest"]))["manifests"]:
            walk(d)
    elif mt == "application/vnd.oci.image.manifest.v1+json":
        m = check("manifest", blob(desc["digest"]))
        config = m.get("config", {}).get("digest")
        if config:
            check("config", blob(config))
    else:
        problems.append(f"unexpected media type {mt}")

check("layout", os.path.join(layout, "oci-layout"))
for d in check("index", os.path.join(layout, "index.json"))["manifests"]:
    walk(d)
for p in problems:
    print(p)
if problems:
    sys.exit(1)
print(f"{checked} documents valid")
