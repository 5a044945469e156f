#!/usr/bin/env python3
"""Extracts the Okta operations lastseen reads from Okta's OpenAPI description into a compact,
committed JSON file (tests/contract/okta/okta-contract.json), so CI can run the contract tests
without the 3.4 MB YAML.

Usage: python3 tests/contract/okta/extract.py <management-minimal.yaml> [output.json]

It keeps, for each operation in OPERATIONS, its path, method, summary, query parameters
(name, schema, description) and per-status response schemas (with `components/responses`
references resolved), then every `components/schemas` entry those reference transitively.
Descriptions are kept: they are what the simulator cites. Nothing else is changed; refresh the
file by running this again on a newer YAML. Needs PyYAML.
"""

import hashlib
import json
import sys

import yaml

OPERATIONS = ["listUsers", "listLogEvents"]
SOURCE = "okta/okta-management-openapi-spec dist/current/management-minimal.yaml (Apache-2.0)"


def resolve(spec, ref):
    assert ref.startswith("#/"), ref
    node = spec
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def schema_refs(node, out):
    """Collects every '#/components/schemas/X' referenced anywhere below node."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            out.add(ref.rsplit("/", 1)[1])
        for v in node.values():
            schema_refs(v, out)
    elif isinstance(node, list):
        for v in node:
            schema_refs(v, out)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    src = sys.argv[1]
    dst = sys.argv[2] if len(sys.argv) > 2 else "tests/contract/okta/okta-contract.json"
    raw = open(src, "rb").read()
    spec = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))

    operations = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or op.get("operationId") not in OPERATIONS:
                continue
            params = []
            for p in op.get("parameters", []):
                if "$ref" in p:
                    p = resolve(spec, p["$ref"])
                params.append({k: p[k] for k in ("name", "in", "description", "required", "schema") if k in p})
            responses = {}
            for status, r in op.get("responses", {}).items():
                if "$ref" in r:
                    r = resolve(spec, r["$ref"])
                content = r.get("content", {}).get("application/json", {})
                responses[str(status)] = {"description": r.get("description", ""), "schema": content.get("schema")}
            operations[op["operationId"]] = {
                "path": path,
                "method": method.upper(),
                "summary": op.get("summary", ""),
                "description": op.get("description", ""),
                "parameters": params,
                "responses": responses,
            }
    missing = [o for o in OPERATIONS if o not in operations]
    if missing:
        sys.exit(f"operations not found in {src}: {missing}")

    schemas = {}
    todo = set()
    schema_refs(operations, todo)
    while todo:
        name = todo.pop()
        if name in schemas:
            continue
        schemas[name] = spec["components"]["schemas"][name]
        found = set()
        schema_refs(schemas[name], found)
        todo |= found - set(schemas)

    out = {
        "provenance": {
            "source": SOURCE,
            "openapi": spec.get("openapi"),
            "info_version": spec.get("info", {}).get("version"),
            "sha256_of_yaml": hashlib.sha256(raw).hexdigest(),
            "extracted_by": "tests/contract/okta/extract.py",
            "operations": OPERATIONS,
        },
        "operations": operations,
        "schemas": dict(sorted(schemas.items())),
    }
    with open(dst, "w") as f:
        json.dump(out, f, indent=1, sort_keys=False, ensure_ascii=False)
        f.write("\n")
    print(f"{dst}: {len(operations)} operations, {len(schemas)} schemas")


if __name__ == "__main__":
    main()
