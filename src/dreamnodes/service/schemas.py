"""The nodes as a caller of the service sees them, and the OpenAPI 3.1 document.

Every `$ref` is inlined (the node schemas point into `defs.json`), so a tool that imports the
document, or a form renderer, needs nothing else; option fields keep the form builders'
convention, `"oneOf": [{"const": "ray-2", "title": "Ray 2 (best)"}, ...]`.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from dreamnodes.catalog.package import Package, load_package
from dreamnodes.service.config import NOT_SERVED

__all__ = ["inline", "node_view", "openapi", "served_nodes"]

_DROP = ("$schema", "$id", "$defs", "$comment")


def inline(schema: dict[str, Any], package: Package) -> dict[str, Any]:
    """A copy of `schema` with every `$ref` replaced by what it points to (siblings kept)."""
    resolver = package.registry.resolver(base_uri=str(schema.get("$id", "")))

    def walk(node: Any, resolver: Any, depth: int) -> Any:
        if depth > 64:
            raise ValueError("schema nested too deep (a recursive $ref?)")
        if isinstance(node, list):
            return [walk(v, resolver, depth + 1) for v in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        ref = node.get("$ref")
        if isinstance(ref, str):
            found = resolver.lookup(ref)
            target = walk(found.contents, found.resolver, depth + 1)
            if isinstance(target, dict):
                out.update(target)
        for key, value in node.items():
            if key == "$ref" or key in _DROP:
                continue
            if key in ("examples", "default", "const", "enum"):
                out[key] = copy.deepcopy(value)
            else:
                out[key] = walk(value, resolver, depth + 1)
        return out

    result: dict[str, Any] = walk(schema, resolver, 0)
    return result


def served_nodes(package: Package | None = None) -> list[dict[str, Any]]:
    """The manifest's entries of the nodes the service runs."""
    package = package or load_package()
    return [dict(n) for n in package.manifest["nodes"] if n["id"] not in NOT_SERVED]


@cache
def _views(package: Package) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    for entry in served_nodes(package):
        node = package.node(entry["id"])
        output_name = str(node.spec.get("output", entry.get("output", ""))).rsplit("/", 1)[-1]
        output = package.schemas.get("https://dreamnodes.invalid/schemas/" + output_name)
        views[entry["id"]] = {
            **{k: v for k, v in entry.items() if k not in ("file", "input", "output")},
            "input_schema": inline(dict(node.input_schema), package),
            "output_schema": inline(output, package) if output else {},
            "rules": [
                {k: v for k, v in rule.items() if k in ("message", "field")} for rule in node.rules
            ],
            "links": {"runs": f"/v1/nodes/{entry['id']}/runs"},
        }
    return views


def node_view(node_id: str, package: Package | None = None) -> dict[str, Any] | None:
    """One node: the manifest entry, input and output schemas inlined, its rules' messages."""
    found = _views(package or load_package()).get(node_id)
    return copy.deepcopy(found) if found is not None else None


def _run_request(input_schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["params"],
        "properties": {
            "params": input_schema,
            "context": {
                "type": "object",
                "description": "Values for {{ }} templates in params (trigger, steps...).",
            },
            "wait": {
                "type": "string",
                "enum": ["none", "poll", "callback"],
                "description": "Wait for the generation to end (overrides params.wait).",
            },
            "timeout": {"type": "number", "exclusiveMinimum": 0},
            "provider": {"type": "string"},
            "notify_url": {
                "type": "string",
                "format": "uri",
                "description": "POSTed the finished run, signed (X-Dreamnodes-Signature).",
            },
        },
    }


_ERROR = {"$ref": "#/components/schemas/Error"}
_RUN = {"$ref": "#/components/schemas/Run"}
_ENGINE = {
    "type": "object",
    "required": ["engine"],
    "properties": {
        "engine": {"type": "string", "enum": ["embedded", "celery"]},
        "alive": {"type": "integer"},
        "workers": {"type": "array", "items": {"type": "object"}},
        "queue": {"type": ["object", "null"]},
        "runs_under_way": {"type": "integer"},
        "error": {"type": "string"},
    },
}


def _responses() -> dict[str, Any]:
    def json_of(schema: dict[str, Any], text: str) -> dict[str, Any]:
        return {"description": text, "content": {"application/json": {"schema": schema}}}

    return {
        "200": json_of(_RUN, "The run, finished within `Prefer: wait=N`, or an earlier run"),
        "202": json_of(_RUN, "The run, accepted and running in the background"),
        "401": json_of(_ERROR, "No token, or a wrong one"),
        "413": json_of(_ERROR, "The body is too large"),
        "422": json_of(_ERROR, "Invalid input: the error names the field"),
    }


@cache
def _document(package: Package) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for node_id, view in _views(package).items():
        paths[f"/v1/nodes/{node_id}/runs"] = {
            "post": {
                "operationId": f"run_{node_id}",
                "summary": view.get("title", node_id),
                "description": view.get("description") or view.get("action", ""),
                "tags": [view.get("category", "Nodes")],
                "parameters": [
                    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}},
                    {"name": "Prefer", "in": "header", "schema": {"type": "string"}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _run_request(view["input_schema"])}},
                },
                "responses": _responses(),
            }
        }
    paths["/v1/engine"] = {
        "get": {
            "operationId": "engine_status",
            "summary": "Where runs are done",
            "description": "`embedded` (this server), or `celery`: each worker's health (alive,"
            " seconds since seen, steps running and done), the queue's depth and the runs under"
            " way.",
            "tags": ["Operations"],
            "responses": {
                "200": {
                    "description": "The engine's status",
                    "content": {"application/json": {"schema": _ENGINE}},
                },
                "401": {
                    "description": "No token, or a wrong one",
                    "content": {"application/json": {"schema": _ERROR}},
                },
            },
        }
    }
    manifest = package.manifest
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{manifest.get('title', 'dreamnodes')} (dreamnodes serve)",
            "version": str(manifest.get("version", "0")),
            "description": "One operation per node: POST its params, get a run back.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "object"}},
                    "required": ["error"],
                },
                "Run": {
                    "type": "object",
                    "required": ["id", "status", "links"],
                    "properties": {
                        "id": {"type": "string"},
                        "node": {"type": "string"},
                        "status": {
                            "type": "string",
                            "enum": ["running", "succeeded", "failed", "interrupted", "abandoned"],
                        },
                        "output": {"type": ["object", "null"]},
                        "error": {"type": ["object", "null"]},
                        "links": {"type": "object"},
                    },
                },
            },
        },
    }


def openapi(package: Package | None = None) -> dict[str, Any]:
    return copy.deepcopy(_document(package or load_package()))
