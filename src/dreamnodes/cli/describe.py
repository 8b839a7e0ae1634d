"""`dreamnodes nodes` and `describe`: the node list and a node's form as a terminal shows it."""

from __future__ import annotations

import json
from typing import Any

from dreamnodes.catalog.package import load_package
from dreamnodes.preparation.inputs import option_labels
from dreamnodes.preparation.prepare import find_node
from dreamnodes.preparation.schema_view import Field, compiled

_WORDS = {
    "string": "text",
    "integer": "whole number",
    "number": "number",
    "boolean": "true/false",
    "object": "object",
    "array": "list",
    "null": "null",
}


def list_nodes(*, as_json: bool) -> int:
    pkg = load_package()
    rows = [
        {key: node.spec[key] for key in ("id", "title", "category", "action", "kind")}
        | {"providers": list(node.providers)}
        for node in pkg.nodes.values()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        print(f"{r['id']:<{width}}  {r['category']:<11}  {r['action']}")
    return 0


def describe(node_id: str, *, as_json: bool) -> int:
    pkg = load_package()
    node = find_node(pkg, node_id)
    if as_json:
        print(json.dumps({"node": node.spec, "input_schema": node.input_schema}, indent=2))
        return 0
    schema = node.input_schema
    labels = option_labels(schema, pkg.registry)
    required = set(schema.get("required", ()))
    fields = compiled(schema, pkg.registry).root.properties or {}
    print(f"{node.spec['title']} ({node.id}) - {node.spec['action']}")
    print(f"  {node.spec['description']}")
    print(f"  category: {node.spec['category']}; providers: {', '.join(node.providers) or 'local'}")
    print("fields:")
    for name, prop in schema.get("properties", {}).items():
        resolved = _resolved(prop, pkg)
        title = prop.get("title") or resolved.get("title") or name
        kind = kind_of(fields.get(name))
        flag = "required" if name in required else "optional"
        line = f"  {name:<18} {title} [{kind}, {flag}]"
        spec = fields.get(name)
        if spec is not None and spec.has_default:
            line += f" default {json.dumps(spec.default)}"
        print(line)
        if name in labels:
            print(
                "      options: "
                + ", ".join(f"{title} = {json.dumps(v)}" for v, title in labels[name])
            )
        if name in node.spec.get("dynamic_options", {}):
            live = node.spec["dynamic_options"][name]
            print(f"      live options from node {live['node']} ({live['path']})")
    for rule in node.rules:
        print(f"  rule: {rule['field']}: {rule['message']}")
    return 0


def kind_of(spec: Field | None) -> str:
    """A field's type in words: "one of" (its options listed), "text", "URL", "list of text"."""
    if spec is None:
        return "any value"
    if spec.options:
        return "one of"
    if spec.uri:
        return "URL"
    if "array" in spec.types and spec.items is not None:
        return f"list of {kind_of(spec.items)}"
    words = [_WORDS.get(t, t) for t in sorted(spec.types)]
    return " or ".join(words) if words else "any value"


def _resolved(prop: dict[str, Any], pkg: Any) -> dict[str, Any]:
    ref = prop.get("$ref")
    if not isinstance(ref, str):
        return prop
    uri, _, pointer = ref.partition("#")
    target: Any = pkg.schema(uri) if uri else {}
    for part in pointer.strip("/").split("/"):
        if part:
            target = target[part]
    return {**target, **{k: v for k, v in prop.items() if k != "$ref"}}
