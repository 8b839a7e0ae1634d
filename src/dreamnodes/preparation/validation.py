"""Checking a node's input: JSON Schema (draft 2020-12) explained in the user's words, then
the node's cross-field rules. Nothing is sent when either fails.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry

from dreamnodes.catalog.conditions import compile_when
from dreamnodes.errors import DreamError, FieldError
from dreamnodes.preparation.schema_view import Field, compiled

__all__ = ["check_rules", "validate"]

_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def validate(params: Mapping[str, Any], schema: Mapping[str, Any], registry: Registry[Any]) -> None:
    """Check params against the schema; raise DreamError("invalid_input") explaining every
    field's problem (one per field, the most relevant first)."""
    made = compiled(schema, registry)
    found = list(made.validator.iter_errors(params))
    if not found:
        return
    groups: dict[str, list[ValidationError]] = {}
    for error in found:
        groups.setdefault(_group(error), []).append(error)
    first = _group(best_match(found))
    order = [first, *(g for g in groups if g != first)]
    problems: list[FieldError] = []
    seen: set[str] = set()
    for group in order:
        error = best_match(groups[group])
        name, message = _explain(error, list(error.absolute_path), made.root)
        if name not in seen:
            seen.add(name)
            problems.append(FieldError(name, f"{name}: {message}"))
    raise DreamError.of_fields(problems)


def _group(error: ValidationError) -> str:
    """Errors are reported one per top-level field (a missing field counts as its own)."""
    path = list(error.absolute_path)
    if path:
        return str(path[0])
    if error.validator == "required" and isinstance(error.instance, Mapping):
        missing = [n for n in cast(list[str], error.validator_value) if n not in error.instance]
        return missing[0] if missing else ""
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        return f"unknown:{error.message}"
    return ""


def _explain(error: ValidationError, path: list[str | int], root: Field) -> tuple[str, str]:
    keyword = str(error.validator)
    value = error.instance
    spec = root.at(path)
    here = _dotted(path) or "input"
    if keyword == "required" and isinstance(value, Mapping):
        missing = [n for n in cast(list[str], error.validator_value) if n not in value]
        return _dotted([*path, missing[0]]), "is required"
    if spec is not None and spec.options and not spec.allows(value):
        candidates = spec.candidates(value)
        if len(candidates) > 1:
            shown = ", ".join(title for const, title in spec.options if const in candidates)
            return here, f"{_show(value)} is ambiguous: it could be {shown}; say which"
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


def _choices(spec: Field) -> str:
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


# What each pattern of the schemas asks for, in words: a user never sees a regular expression.
_PATTERN_WORDS = {
    "^[a-z0-9_]{2,64}$(?!\\n)": "a key of 2 to 64 lower-case letters, digits and underscores"
    " (such as dolly_zoom)",
    "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$(?!\\n)": "an id of letters, digits, '_', '.', ':'"
    " and '-' (up to 128)",
    "^https?://[^\\s/]+": "an http:// or https:// URL",
    "^[A-Za-z0-9](?:[A-Za-z0-9 ._-]{0,198}[A-Za-z0-9._-])?$(?!\\n)": "a plain file name of"
    " letters, digits, spaces, '.', '-' and '_' (no folders), starting with a letter or digit",
}


def _unlike(value: Any, pattern: str) -> str:
    why = " (it contains a line break)" if isinstance(value, str) and "\n" in value else ""
    wanted = _PATTERN_WORDS.get(pattern)
    if wanted is None:
        return f"{_show(value)} is not in the form this field takes{why}"
    return f"{_show(value)} is not {wanted}{why}"


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
    """Raise DreamError("invalid_input") listing every rule whose `when` holds for params
    (one per field, in the rules' order).

    Rules are data (see `dreamnodes.catalog.conditions`); each is compiled once and cached.
    """
    problems: list[FieldError] = []
    for holds, name, message in _compiled_rules(rules):
        if holds(params) and all(p.field != name for p in problems):
            problems.append(FieldError(name, f"{name}: {message}"))
    if problems:
        raise DreamError.of_fields(problems)


_Rule = tuple[Callable[[Mapping[str, Any]], bool], str, str]
# A node's rules are one long-lived list: compiled once per list, not re-serialised per call.
_by_list: dict[int, tuple[Sequence[Mapping[str, Any]], list[_Rule]]] = {}


def _compiled_rules(rules: Sequence[Mapping[str, Any]]) -> list[_Rule]:
    found = _by_list.get(id(rules))
    if found is not None and found[0] is rules:
        return found[1]
    compiled = [
        (_condition(json.dumps(r["when"], sort_keys=True)), str(r["field"]), str(r["message"]))
        for r in rules
    ]
    if len(_by_list) >= 512:
        _by_list.clear()
    _by_list[id(rules)] = (rules, compiled)  # the list is kept, so its id is never reused
    return compiled


@functools.lru_cache(maxsize=1024)
def _condition(when: str) -> Callable[[Mapping[str, Any]], bool]:
    return compile_when(json.loads(when))
