"""A node's input schema compiled once into field specs: types, options with labels, defaults.

`$ref`s are inlined (the node schemas reference `defs.json`), option lists become value/label
pairs, and both the fast validator (fastjsonschema) and the readable one (jsonschema) are built.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing._core import Resolver
from referencing.jsonschema import DRAFT202012

from dreamnodes.preparation import spelling

BOOLEANS = {
    "yes": True,
    "true": True,
    "on": True,
    "1": True,
    "no": False,
    "false": False,
    "off": False,
    "0": False,
}
INTEGER = re.compile(r"-?\d+")
NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
# Keywords a `$ref` may sit next to without changing what the schema accepts.
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$comment", "deprecated", "readOnly"}
)
_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = (
    "items",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
)
_MAX_COMPILED = 256


# ---------------------------------------------------------------- schema views


@dataclass
class Field:
    """What normalising and explaining errors need to know about one schema position."""

    types: frozenset[str] = frozenset()
    options: tuple[tuple[Any, str], ...] = ()
    spellings: dict[str, tuple[int, ...]] = field(default_factory=dict)
    properties: dict[str, Field] | None = None
    required: frozenset[str] = frozenset()
    items: Field | None = None
    uri: bool = False
    has_default: bool = False
    default: Any = None
    pattern: str | None = None

    def at(self, path: Sequence[str | int]) -> Field | None:
        here: Field | None = self
        for step in path:
            if here is None:
                return None
            here = here.items if isinstance(step, int) else (here.properties or {}).get(step)
        return here

    def allows(self, value: Any) -> bool:
        return any(same(value, const) for const, _ in self.options)

    def candidates(self, value: Any) -> list[Any]:
        """The option values `value` may be a spelling of (see `spelling`)."""
        return [self.options[p][0] for p in spelling.match(value, self.spellings)]


@dataclass
class Compiled:
    root: Field
    validator: Draft202012Validator
    keep: tuple[Any, ...]  # the schema and registry, so the ids in the cache key stay unique


class _Cycle(Exception):
    """A recursive `$ref`: such schemas are validated as written, not inlined."""


def _inline(node: Any, resolver: Resolver[Any], seen: tuple[str, ...], strict: bool) -> Any:
    """A copy of a schema with every `$ref` replaced by what it points to.

    strict=True keeps the meaning exactly (a `$ref` with non-annotation siblings becomes an
    allOf) and turns `oneOf` lists of consts into `enum`, which validates far faster.
    strict=False merges siblings into one dict: the view normalising reads.
    """
    if not isinstance(node, dict):
        return node
    if "$id" in node and seen:
        resolver = resolver.in_subresource(DRAFT202012.create_resource(node))
    if "$dynamicRef" in node or "$recursiveRef" in node:
        raise _Cycle(str(node.get("$dynamicRef") or node.get("$recursiveRef")))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$ref", "$defs") or (key == "$id" and seen):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: _inline(v, resolver, (*seen, key), strict) for k, v in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_inline(v, resolver, (*seen, key), strict) for v in value]
        elif key in _SCHEMA_ONE:
            out[key] = _inline(value, resolver, (*seen, key), strict)
        else:
            out[key] = value
    if strict and _const_options(out.get("oneOf")) is not None:
        out["enum"] = [option["const"] for option in out.pop("oneOf")]
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return out
    resolved = resolver.lookup(ref)
    target = f"$ref:{id(resolved.contents)}"  # the same target twice on one path is a cycle
    if target in seen:
        raise _Cycle(ref)
    inner = _inline(resolved.contents, resolved.resolver, (*seen, target), strict)
    if not isinstance(inner, dict):
        return inner
    if strict and not set(out) <= _ANNOTATIONS:
        return {"allOf": [inner, out]}
    return {**inner, **out}


def _const_options(one_of: Any) -> list[dict[str, Any]] | None:
    if not isinstance(one_of, list) or not one_of:
        return None
    if all(
        isinstance(o, dict) and "const" in o and set(o) <= {"const", "title", "description"}
        for o in one_of
    ):
        return one_of
    return None


def _field(view: Any) -> Field:
    if not isinstance(view, dict):
        return Field()
    kind = view.get("type")
    types = frozenset([kind] if isinstance(kind, str) else kind if isinstance(kind, list) else [])
    options: list[tuple[Any, str]] = []
    if (choices := _const_options(view.get("oneOf"))) is not None:
        options = [(o["const"], str(o.get("title", o["const"]))) for o in choices]
    elif isinstance(view.get("enum"), list):
        options = [(v, v if isinstance(v, str) else json.dumps(v)) for v in view["enum"]]
    properties = view.get("properties")
    items = view.get("items")
    return Field(
        types=types,
        options=tuple(options),
        spellings=spelling.index(options),
        properties={k: _field(v) for k, v in properties.items()}
        if isinstance(properties, dict)
        else None,
        required=frozenset(view.get("required", ())),
        items=_field(items) if isinstance(items, dict) else None,
        uri=view.get("format") == "uri",
        has_default="default" in view,
        default=view.get("default"),
        pattern=view["pattern"] if isinstance(view.get("pattern"), str) else None,
    )


def _is_uri(value: object) -> bool:
    """An absolute URI with a scheme and no spaces (jsonschema checks `uri` only with extras)."""
    if not isinstance(value, str):
        return True
    if any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    if not parts.scheme:
        return False
    return bool(parts.netloc) if parts.scheme in ("http", "https") else True


_FORMATS = FormatChecker(formats=())
_FORMATS.checks("uri")(_is_uri)

_cache: dict[tuple[Any, int], Compiled] = {}
_cache_lock = threading.Lock()


def compiled(schema: Mapping[str, Any], registry: Registry[Any]) -> Compiled:
    key = (schema.get("$id") or id(schema), id(registry))
    found = _cache.get(key)
    if found is not None:
        return found
    base = str(schema.get("$id", ""))
    resolver = registry.resolver(base_uri=base)
    try:
        view = _inline(dict(schema), resolver, (), strict=False)
        fast = _inline(dict(schema), resolver, (), strict=True)
        validator = Draft202012Validator(fast, registry=registry, format_checker=_FORMATS)
    except _Cycle:
        view = dict(schema)
        validator = Draft202012Validator(schema, registry=registry, format_checker=_FORMATS)
    made = Compiled(root=_field(view), validator=validator, keep=(schema, registry))
    with _cache_lock:
        if len(_cache) >= _MAX_COMPILED:
            _cache.clear()
        _cache[key] = made
    return made


# ---------------------------------------------------------------- normalise


def same(a: Any, b: Any) -> bool:
    # JSON's true is not 1: compare types too.
    return type(a) is type(b) and bool(a == b)
