"""A node's input: accept what upstream steps hand over, then check it against the node's schema.

`normalise` turns option labels, "Yes"/"No" and numeric strings into values and drops
"not set" optional fields; `validate` checks JSON Schema (draft 2020-12) and explains the first
problem in the user's words; `check_rules` applies the node's cross-field rules (conditions).
"""

from __future__ import annotations

import copy
import functools
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing._core import Resolver
from referencing.jsonschema import DRAFT202012

from dreamnodes.catalog.conditions import compile_when
from dreamnodes.errors import DreamError

__all__ = ["check_rules", "normalise", "option_labels", "validate", "with_defaults"]

_BOOLEANS = {
    "yes": True,
    "true": True,
    "on": True,
    "1": True,
    "no": False,
    "false": False,
    "off": False,
    "0": False,
}
_INTEGER = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
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
_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}
_MAX_COMPILED = 256


# ---------------------------------------------------------------- schema views


@dataclass
class _Field:
    """What normalising and explaining errors need to know about one schema position."""

    types: frozenset[str] = frozenset()
    options: tuple[tuple[Any, str], ...] = ()
    by_label: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, _Field] | None = None
    required: frozenset[str] = frozenset()
    items: _Field | None = None
    uri: bool = False
    has_default: bool = False
    default: Any = None

    def at(self, path: Sequence[str | int]) -> _Field | None:
        here: _Field | None = self
        for step in path:
            if here is None:
                return None
            here = here.items if isinstance(step, int) else (here.properties or {}).get(step)
        return here

    def allows(self, value: Any) -> bool:
        return any(_same(value, const) for const, _ in self.options)


@dataclass
class _Compiled:
    root: _Field
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


def _field(view: Any) -> _Field:
    if not isinstance(view, dict):
        return _Field()
    kind = view.get("type")
    types = frozenset([kind] if isinstance(kind, str) else kind if isinstance(kind, list) else [])
    options: list[tuple[Any, str]] = []
    if (choices := _const_options(view.get("oneOf"))) is not None:
        options = [(o["const"], str(o.get("title", o["const"]))) for o in choices]
    elif isinstance(view.get("enum"), list):
        options = [(v, v if isinstance(v, str) else json.dumps(v)) for v in view["enum"]]
    by_label: dict[str, Any] = {}
    for const, title in options:
        by_label.setdefault(title.strip().casefold(), const)
    for const, _ in options:
        if isinstance(const, str):
            by_label.setdefault(const.strip().casefold(), const)
    properties = view.get("properties")
    items = view.get("items")
    return _Field(
        types=types,
        options=tuple(options),
        by_label=by_label,
        properties={k: _field(v) for k, v in properties.items()}
        if isinstance(properties, dict)
        else None,
        required=frozenset(view.get("required", ())),
        items=_field(items) if isinstance(items, dict) else None,
        uri=view.get("format") == "uri",
        has_default="default" in view,
        default=view.get("default"),
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

_cache: dict[tuple[Any, int], _Compiled] = {}
_cache_lock = threading.Lock()


def _compiled(schema: Mapping[str, Any], registry: Registry[Any]) -> _Compiled:
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
    made = _Compiled(root=_field(view), validator=validator, keep=(schema, registry))
    with _cache_lock:
        if len(_cache) >= _MAX_COMPILED:
            _cache.clear()
        _cache[key] = made
    return made


# ---------------------------------------------------------------- normalise


def normalise(
    params: Mapping[str, Any], schema: Mapping[str, Any], registry: Registry[Any]
) -> dict[str, Any]:
    """A new dict with labels turned into values, "Yes"/"20" into true/20, "not set" dropped.

    Anything that does not convert is left as it is, for `validate` to report.
    """
    return _normalise_object(params, _compiled(schema, registry).root)


def with_defaults(
    params: Mapping[str, Any], schema: Mapping[str, Any], registry: Registry[Any]
) -> dict[str, Any]:
    """A new dict with the schema's top-level defaults added for fields that are absent."""
    out = dict(params)
    for name, spec in (_compiled(schema, registry).root.properties or {}).items():
        if spec.has_default and name not in out:
            out[name] = copy.deepcopy(spec.default)
    return out


def option_labels(
    schema: Mapping[str, Any], registry: Registry[Any]
) -> dict[str, list[tuple[Any, str]]]:
    """For each top-level option field, its (value, label) pairs in the schema's order."""
    properties = _compiled(schema, registry).root.properties or {}
    return {name: list(spec.options) for name, spec in properties.items() if spec.options}


def _normalise_object(value: Mapping[str, Any], spec: _Field) -> dict[str, Any]:
    properties = spec.properties
    if properties is None:
        return dict(value)
    out: dict[str, Any] = {}
    for name, item in value.items():
        sub = properties.get(name)
        if sub is None:
            out[name] = item  # unknown: validation names it
        elif (item is None or item == "") and name not in spec.required:
            continue  # upstream steps hand over "" or null for "not set"
        else:
            out[name] = _normalise_value(item, sub)
    return out


def _normalise_value(value: Any, spec: _Field) -> Any:
    if isinstance(value, str):
        if spec.options and not spec.allows(value):
            label = spec.by_label.get(value.strip().casefold(), _NOT_FOUND)
            if label is not _NOT_FOUND:
                return label
        if "string" in spec.types:
            return value
        text = value.strip()
        if "boolean" in spec.types and text.casefold() in _BOOLEANS:
            return _BOOLEANS[text.casefold()]
        if "integer" in spec.types and _INTEGER.fullmatch(text):
            return int(text)
        if "number" in spec.types and _NUMBER.fullmatch(text):
            number = float(text)
            return int(text) if _INTEGER.fullmatch(text) else number
        return value
    if isinstance(value, Mapping):
        return _normalise_object(value, spec)
    if isinstance(value, list) and spec.items is not None:
        items = spec.items
        return [_normalise_value(v, items) for v in value]
    return value


_NOT_FOUND = object()


def _same(a: Any, b: Any) -> bool:
    # JSON's true is not 1: compare types too.
    return type(a) is type(b) and bool(a == b)


# ---------------------------------------------------------------- validate


def validate(params: Mapping[str, Any], schema: Mapping[str, Any], registry: Registry[Any]) -> None:
    """Check params against the schema; raise DreamError("invalid_input") explaining one problem."""
    made = _compiled(schema, registry)
    errors = made.validator.iter_errors(params)
    first = next(errors, None)
    if first is None:
        return
    error = best_match([first, *errors])
    path = list(error.absolute_path)
    name, message = _explain(error, path, made.root)
    raise DreamError("invalid_input", f"{name}: {message}", field=name)


def _explain(error: ValidationError, path: list[str | int], root: _Field) -> tuple[str, str]:
    keyword = str(error.validator)
    value = error.instance
    spec = root.at(path)
    here = _dotted(path) or "input"
    if keyword == "required" and isinstance(value, Mapping):
        missing = [n for n in cast(list[str], error.validator_value) if n not in value]
        return _dotted([*path, missing[0]]), "is required"
    if keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(value, Mapping):
        known = list((spec.properties if spec else None) or {})
        extra = [k for k in value if k not in known] or list(value)
        owner = "this node" if not path else here
        takes = f"takes: {', '.join(known)}" if known else "takes no fields"
        return _dotted([*path, str(extra[0])]), f"unknown field; {owner} {takes}"
    if spec is not None and spec.options and not spec.allows(value):
        kinds = {_json_type(const) for const, _ in spec.options}
        if _json_type(value) not in kinds:
            return here, _expected(value, sorted(kinds))
        return here, f"{_show(value)} is not allowed; choose one of {_choices(spec)}"
    if spec is not None and spec.uri and keyword in ("format", "pattern"):
        return here, f"{_show(value)} is not a public http(s) URL"
    if keyword in ("minLength", "pattern") and isinstance(value, str) and not value.strip():
        return here, "is empty" if not value else "is blank (only spaces or line breaks)"
    explain = _EXPLAIN.get(keyword)
    if explain is not None:
        return here, explain(value, error.validator_value)
    return here, error.message


def _choices(spec: _Field) -> str:
    shown = []
    for const, title in spec.options:
        text = const if isinstance(const, str) else json.dumps(const)
        shown.append(title if text.casefold() in title.casefold() else f"{title} = {text}")
    return ", ".join(shown)


def _expected(value: Any, types: Any) -> str:
    wanted = [types] if isinstance(types, str) else list(types)
    return f"expected {' or '.join(_TYPE_WORDS.get(t, t) for t in wanted)}, got {_got(value)}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null" if value is None else "array" if isinstance(value, list) else "object"


def _got(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, str):
        return f"the text {_show(value)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _show(value: Any) -> str:
    if isinstance(value, str):
        text = json.dumps(value if len(value) <= 60 else value[:57] + "...", ensure_ascii=False)
        return text
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return json.dumps(value)


def _unlike(value: Any, pattern: str) -> str:
    # `$(?!\n)` is `$` that also refuses a trailing line break (Python's `$` allows one).
    shown = pattern.replace("$(?!\\n)", "$")
    why = " (it contains a line break)" if isinstance(value, str) and "\n" in value else ""
    return f"{_show(value)} does not have the expected form ({shown}){why}"


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | list) else 0


_EXPLAIN: dict[str, Callable[[Any, Any], str]] = {
    "type": _expected,
    "maximum": lambda v, limit: f"{_show(v)} is above the maximum {limit}",
    "minimum": lambda v, limit: f"{_show(v)} is below the minimum {limit}",
    "exclusiveMaximum": lambda v, limit: f"{_show(v)} must be below {limit}",
    "exclusiveMinimum": lambda v, limit: f"{_show(v)} must be above {limit}",
    "minLength": lambda v, n: f"too short ({_length(v)} characters, minimum {n})",
    "maxLength": lambda v, n: f"too long ({_length(v)} characters, maximum {n})",
    "minItems": lambda v, n: f"too few items ({_length(v)}, minimum {n})",
    "maxItems": lambda v, n: f"too many items ({_length(v)}, maximum {n})",
    "uniqueItems": lambda v, _: "each item may appear only once",
    "pattern": lambda v, p: _unlike(v, p),
    "format": lambda v, f: f"{_show(v)} is not a valid {f}",
    "const": lambda v, c: f"{_show(v)} is not allowed; it must be {_show(c)}",
    "enum": lambda v, e: f"{_show(v)} is not allowed; choose one of {', '.join(map(_show, e))}",
}


def _dotted(path: Sequence[str | int]) -> str:
    name = ""
    for step in path:
        if isinstance(step, int):
            name += f"[{step}]"
        else:
            name += f".{step}" if name else step
    return name


# ---------------------------------------------------------------- cross-field rules


def check_rules(params: Mapping[str, Any], rules: Sequence[Mapping[str, Any]]) -> None:
    """Raise DreamError("invalid_input") for the first rule whose `when` holds for params.

    Rules are data (see `dreamnodes.catalog.conditions`); each is compiled once and cached.
    """
    for rule in rules:
        if _condition(json.dumps(rule["when"], sort_keys=True))(params):
            name = str(rule["field"])
            raise DreamError("invalid_input", f"{name}: {rule['message']}", field=name)


@functools.lru_cache(maxsize=1024)
def _condition(when: str) -> Callable[[Mapping[str, Any]], bool]:
    return compile_when(json.loads(when))
