"""A node's input as upstream steps hand it over, turned into values the schema accepts.

`normalise` turns option labels, "Yes"/"No" and numeric strings into values and drops
"not set" optional fields; `with_defaults` fills the declared defaults; `option_labels` lists
what a form shows for each option field.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from referencing import Registry

from dreamnodes.preparation import spelling
from dreamnodes.preparation.schema_view import BOOLEANS, INTEGER, NUMBER, Field, compiled

__all__ = ["normalise", "option_labels", "with_defaults"]


def normalise(
    params: Mapping[str, Any], schema: Mapping[str, Any], registry: Registry[Any]
) -> dict[str, Any]:
    """A new dict with labels turned into values, "Yes"/"20" into true/20, "not set" dropped.

    Anything that does not convert is left as it is, for `validate` to report.
    """
    return _normalise_object(params, compiled(schema, registry).root)


def with_defaults(
    params: Mapping[str, Any],
    schema: Mapping[str, Any],
    registry: Registry[Any],
    *,
    required_only: bool = False,
) -> dict[str, Any]:
    """A new dict with the schema's top-level defaults added for fields that are absent
    (``required_only``: only for required fields, as a form pre-fills them)."""
    out = dict(params)
    root = compiled(schema, registry).root
    for name, spec in (root.properties or {}).items():
        if required_only and name not in root.required:
            continue
        if spec.has_default and name not in out:
            out[name] = copy.deepcopy(spec.default)
    return out


def option_labels(
    schema: Mapping[str, Any], registry: Registry[Any]
) -> dict[str, list[tuple[Any, str]]]:
    """For each top-level option field, its (value, label) pairs in the schema's order."""
    properties = compiled(schema, registry).root.properties or {}
    return {name: list(spec.options) for name, spec in properties.items() if spec.options}


def _normalise_object(value: Mapping[str, Any], spec: Field) -> dict[str, Any]:
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


def _normalise_value(value: Any, spec: Field) -> Any:
    if spec.options and not spec.allows(value):
        found = spec.candidates(value)
        if len(found) == 1:
            return found[0]  # an ambiguous spelling is left for `validate` to explain
    if isinstance(value, str):
        if "string" in spec.types:
            if (
                spec.pattern
                and value.isprintable()
                and _lower_key(spec.pattern)
                and not _fits(spec.pattern, value)
            ):
                keyed = spelling.snake(value)  # a title where a key is asked: "Dolly Zoom"
                if keyed and _fits(spec.pattern, keyed):
                    return keyed
            return value
        text = value.strip()
        if "boolean" in spec.types and text.casefold() in BOOLEANS:
            return BOOLEANS[text.casefold()]
        if "integer" in spec.types and INTEGER.fullmatch(text):
            return int(text)
        if "number" in spec.types and NUMBER.fullmatch(text):
            number = float(text)
            return int(text) if INTEGER.fullmatch(text) else number
        return value
    if isinstance(value, Mapping):
        return _normalise_object(value, spec)
    if isinstance(value, list) and spec.items is not None:
        items = spec.items
        return [_normalise_value(v, items) for v in value]
    return value


def _lower_key(pattern: str) -> bool:
    """A field of lower-case keys (concepts: dolly_zoom), where a title may stand for its key."""
    return _fits(pattern, "ab_c") and not _fits(pattern, "AB_C")


def _fits(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:  # pragma: no cover - the schemas' patterns are Python-compatible
        return True


# ---------------------------------------------------------------- validate
