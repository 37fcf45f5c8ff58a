#!/usr/bin/env python3
"""Validate JSON documents against one of Cairn's published schemas (docs/schemas, draft 2020-12).

Usage: validate_json.py SCHEMA_DIR SCHEMA_FILE DOCUMENT [--lines]
With --lines, DOCUMENT is JSON lines (a campaign journal) and each line is validated.
Prints one line per problem and exits 1 if any; prints "valid: N" otherwise.
"""
import json, os, sys
import jsonschema
from referencing import Registry, Resource

schema_dir, schema_file, document = sys.argv[1:4]
lines = "--lines" in sys.argv[4:]
resources = []
for name in os.listdir(schema_dir):
    if name.endswith(".json"):
        with open(os.path.join(schema_dir, name)) as f:
            doc = json.load(f)
        resources.append((doc["$id"], Resource.from_contents(doc)))
registry = Registry().with_resources(resources)
with open(os.path.join(schema_dir, schema_file)) as f:
    schema = json.load(f)
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema, registry=registry, format_checker=jsonschema.FormatChecker())
with open(document) as f:
    docs = [json.loads(l) for l in f if l.strip()] if lines else [json.load(f)]
problems = [f"{document}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for d in docs for e in validator.iter_errors(d)]
for p in problems:
    print(p)
if problems:
    sys.exit(1)
print(f"valid: {len(docs)}")
