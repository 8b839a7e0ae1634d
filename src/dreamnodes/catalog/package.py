"""Loading the package a host reads: manifest.json, the node files and the schemas.

Every node file is checked against ``schemas/node.schema.json`` when it is loaded, and its
request declarations are compiled once, so running a node does no parsing.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from dreamnodes.catalog.mapping import RequestPlan
from dreamnodes.errors import DreamError

SCHEMA_BASE = "https://dreamnodes.invalid/schemas/"


def data_dir() -> Path:
    """Where manifest.json, nodes/ and schemas/ are: inside the wheel, or the source checkout."""
    bundled = Path(__file__).parents[1] / "_data"  # dreamnodes/_data in the wheel
    if (bundled / "manifest.json").is_file():
        return bundled
    return Path(__file__).resolve().parents[3]  # src/dreamnodes/catalog -> the checkout


@dataclass(frozen=True)
class Provider:
    """How one provider carries out a node: its compiled request and how to read the answer."""

    name: str
    spec: Mapping[str, Any]
    plan: RequestPlan | None

    @property
    def response(self) -> Mapping[str, Any]:
        value: Mapping[str, Any] = self.spec.get("response", {"type": "generation"})
        return value

    @property
    def accepts(self) -> frozenset[str]:
        """Input fields this provider can carry out (others are an input error)."""
        extra = frozenset(self.spec.get("also_accepts", ()))
        return extra | (self.plan.reads if self.plan else frozenset())


@dataclass(frozen=True)
class Node:
    """One node file, with its input schema and compiled providers."""

    spec: Mapping[str, Any]
    input_schema: Mapping[str, Any]
    providers: Mapping[str, Provider]
    package: Package = field(repr=False, compare=False)

    @property
    def id(self) -> str:
        return str(self.spec["id"])

    @property
    def kind(self) -> str:
        return str(self.spec["kind"])

    @property
    def rules(self) -> Sequence[Mapping[str, Any]]:
        """The node's cross-field rules (its own list: checks cache their compiled form by it)."""
        rules: Sequence[Mapping[str, Any]] = self.spec.get("rules", ())
        return rules

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            offered = ", ".join(self.providers) or "none (it runs locally)"
            raise DreamError(
                "invalid_input",
                f"provider: {self.id} is not offered by {name!r}; providers: {offered}",
                field="provider",
            ) from None

    @cached_property
    def fast_validator(self) -> Any:
        """A compiled validator for the happy path (the readable error comes from jsonschema)."""
        # fastjsonschema rewrites $refs in place: give it a copy of its own.
        return fastjsonschema.compile(
            copy.deepcopy(dict(self.input_schema)),
            handlers={"https": self.package.schema_by_uri},
            use_default=False,
        )


class Package:
    """The whole package: manifest, nodes by id, and a registry of every schema."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest: dict[str, Any] = _read_json(root / "manifest.json")
        self.schemas: dict[str, dict[str, Any]] = {}
        for path in sorted((root / "schemas").glob("*.json")):
            schema = _read_json(path)
            self.schemas[schema.get("$id", SCHEMA_BASE + path.name)] = schema
        self.registry: Registry[Any] = Registry().with_resources(
            (uri, Resource.from_contents(schema)) for uri, schema in self.schemas.items()
        )
        meta = Draft202012Validator(self.schema("node.schema.json"), registry=self.registry)
        self.nodes: dict[str, Node] = {}
        for entry in self.manifest["nodes"]:
            spec = _read_json(root / entry["file"])
            errors = sorted(meta.iter_errors(spec), key=lambda e: list(e.absolute_path))
            if errors:
                where = "/".join(str(p) for p in errors[0].absolute_path)
                raise ValueError(f"{entry['file']}: {where}: {errors[0].message}")
            self.nodes[spec["id"]] = self._node(spec)

    def _node(self, spec: dict[str, Any]) -> Node:
        billable = spec["kind"] == "create"
        providers = {
            name: Provider(
                name,
                pspec,
                RequestPlan.compile(pspec["request"], billable=billable)
                if "request" in pspec
                else None,
            )
            for name, pspec in spec.get("providers", {}).items()
        }
        return Node(spec, self.schema(spec["input"]), providers, self)

    def schema(self, name: str) -> dict[str, Any]:
        return self.schemas[SCHEMA_BASE + name]

    def schema_by_uri(self, uri: str) -> dict[str, Any]:
        return self.schemas[uri]

    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise DreamError(
                "invalid_input",
                f"node: unknown node {node_id!r}; nodes: {', '.join(self.nodes)}",
                field="node",
            ) from None

    def credential(self, provider: str) -> dict[str, Any]:
        name = self.manifest["providers"][provider]["credential"]
        found: dict[str, Any] = self.manifest["credentials"][name]
        return found


def _read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


@cache
def load_package(root: str | None = None) -> Package:
    """The package at ``root`` (default: the installed one), loaded and checked once."""
    return Package(Path(root) if root else data_dir())
