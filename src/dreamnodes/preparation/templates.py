"""The user's `{{ path }}` templates: look values up in the read-only run context, nothing else.

A template is a path (`trigger.prompt`, `steps.make_video.id`, `item.prompts[0]`,
`item["odd key"]`, `index`) and optionally `| default(<JSON literal>)`. There are no calls,
no arithmetic and no attribute access on Python objects: only dict keys and list indexes.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dreamnodes.errors import DreamError
from dreamnodes.preparation.usable import NOT_UNICODE, field_name, surrogate, unusable

__all__ = ["has_templates", "render"]

_OPEN = "{{"
_CLOSE = "}}"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_DQ_KEY = re.compile(r'\[\s*("(?:[^"\\]|\\.)*")\s*\]')
_SQ_KEY = re.compile(r"\[\s*'([^'\\]*)'\s*\]")
_FILTER = re.compile(r"\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
_MISSING = object()
_MAX_KEYS_SHOWN = 20


class _SyntaxProblem(Exception):
    """A template that cannot be parsed; the caller adds the field name."""


@dataclass(frozen=True)
class _Lookup:
    source: str  # the template as the user wrote it, `{{ ... }}` included
    path: tuple[str | int, ...]
    has_default: bool = False
    default: Any = None


@dataclass(frozen=True)
class _Parsed:
    # Either a single template that is the whole string (keeps the value's type),
    # or text parts and lookups to join into a string.
    single: _Lookup | None
    parts: tuple[str | _Lookup, ...]


def has_templates(value: Any) -> bool:
    """Whether a value (walking dicts and lists, values only) contains a `{{` template."""
    if isinstance(value, str):
        return _OPEN in value
    if isinstance(value, Mapping):
        return any(has_templates(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_templates(v) for v in value)
    return False


def render(params: Any, context: Mapping[str, Any]) -> Any:
    """Resolve every template in the values of `params` (dicts and lists walked; keys left alone).

    Raises DreamError(code="template_error") naming the field, for a missing path or bad syntax.
    """
    return _render(params, context, ())


def _render(value: Any, context: Mapping[str, Any], field: tuple[str | int, ...]) -> Any:
    if isinstance(value, str):
        if _OPEN not in value:
            return value
        return _render_string(value, context, field)
    if isinstance(value, Mapping):
        return {k: _render(v, context, (*field, k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_render(v, context, (*field, i)) for i, v in enumerate(value)]
    return value


def _render_string(text: str, context: Mapping[str, Any], field: tuple[str | int, ...]) -> Any:
    try:
        parsed = _parse(text)
    except _SyntaxProblem as problem:
        name = field_name(field)
        raise DreamError("template_error", f"{name}: {problem}", field=name) from None
    if parsed.single is not None:
        value = _resolve(parsed.single, context, field)
        # The output must not share mutable state with the context or the parse cache.
        return copy.deepcopy(value) if isinstance(value, dict | list) else value
    out: list[str] = []
    for part in parsed.parts:
        if isinstance(part, str):
            out.append(part)
        else:
            out.append(_as_text(_resolve(part, context, field)))
    return "".join(out)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _path_name(path: tuple[str | int, ...]) -> str:
    name = ""
    for part in path:
        if isinstance(part, int):
            name += f"[{part}]"
        elif _NAME.fullmatch(part):
            name += f".{part}" if name else part
        else:
            name += f"[{json.dumps(part, ensure_ascii=False)}]"
    return name


def _resolve(lookup: _Lookup, context: Mapping[str, Any], field: tuple[str | int, ...]) -> Any:
    current: Any = context
    for depth, step in enumerate(lookup.path):
        found = _step(current, step)
        if found is _MISSING:
            if lookup.has_default:
                return lookup.default
            where = _path_name(lookup.path[:depth]) or "the context"
            name = field_name(field)
            raise DreamError(
                "template_error",
                f"{name}: {lookup.source}: {_describe_missing(current, step, where)}",
                field=name,
            )
        current = found
    if current is None and lookup.has_default:
        return lookup.default
    return current


def _step(current: Any, step: str | int) -> Any:
    if isinstance(step, int):
        is_list = isinstance(current, Sequence) and not isinstance(current, str | bytes)
        return current[step] if is_list and -len(current) <= step < len(current) else _MISSING
    if isinstance(current, Mapping) and step in current:
        return current[step]
    return _MISSING


def _describe_missing(current: Any, step: str | int, where: str) -> str:
    if isinstance(step, int):
        if isinstance(current, Sequence) and not isinstance(current, str | bytes):
            size = len(current)
            has = "it is empty" if size == 0 else f"it has {size} item{'s' * (size != 1)}"
            return f"index {step} not found in {where}; {has}"
        return f"index {step} not found: {where} is {_kind(current)}, not a list"
    if isinstance(current, Mapping):
        keys = [str(k) for k in current]
        if not keys:
            return f'"{step}" not found in {where}; it has no keys'
        shown = ", ".join(keys[:_MAX_KEYS_SHOWN])
        more = f" and {len(keys) - _MAX_KEYS_SHOWN} more" if len(keys) > _MAX_KEYS_SHOWN else ""
        return f'"{step}" not found in {where}; it has: {shown}{more}'
    return f'"{step}" not found: {where} is {_kind(current)}, not an object'


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return "a value"


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> _Parsed:
    """Split a string into text and lookups once; templates are on the hot path."""
    parts: list[str | _Lookup] = []
    pos = 0
    while True:
        start = text.find(_OPEN, pos)
        if start < 0:
            if pos < len(text):
                parts.append(text[pos:])
            break
        if start > pos:
            parts.append(text[pos:start])
        end = _find_close(text, start + len(_OPEN))
        source = text[start : end + len(_CLOSE)]
        parts.append(_parse_expression(text[start + len(_OPEN) : end], source))
        pos = end + len(_CLOSE)
    lookups = [p for p in parts if isinstance(p, _Lookup)]
    if len(lookups) == 1 and all(isinstance(p, _Lookup) or not p.strip() for p in parts):
        return _Parsed(single=lookups[0], parts=())
    return _Parsed(single=None, parts=tuple(parts))


def _find_close(text: str, pos: int) -> int:
    """Index of the `}}` closing a template, skipping JSON strings and brackets in a default."""
    depth = 0
    quote = ""
    i = pos
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif depth == 0 and text.startswith(_CLOSE, i):
            return i
        elif char in "([{":
            depth += 1
        elif char in ")]}" and depth > 0:
            depth -= 1
        i += 1
    snippet = text[pos - len(_OPEN) :]
    if len(snippet) > 60:
        snippet = snippet[:57] + "..."
    raise _SyntaxProblem(f'"{snippet}": the template is not closed with "}}}}"')


def _parse_expression(expr: str, source: str) -> _Lookup:
    body = expr.strip()
    if not body:
        raise _SyntaxProblem(
            f"{source}: the template is empty; write a path such as trigger.prompt"
        )
    path: list[str | int] = []
    match = _NAME.match(body)
    if match is None:
        raise _SyntaxProblem(f"{source}: a path must start with a name such as trigger or item")
    path.append(match.group())
    pos = match.end()
    while pos < len(body) and body[pos] in ".[":
        if body[pos] == ".":
            match = _NAME.match(body, pos + 1)
            if match is None:
                raise _SyntaxProblem(f'{source}: a name is missing after "." in {body!r}')
            path.append(match.group())
        elif match := _INDEX.match(body, pos):
            path.append(int(match.group(1)))
        elif match := _DQ_KEY.match(body, pos):
            key = json.loads(match.group(1))
            if surrogate(key) is not None:
                raise _SyntaxProblem(f"{source}: the key {NOT_UNICODE.format(surrogate(key))}")
            path.append(key)
        elif match := _SQ_KEY.match(body, pos):
            path.append(match.group(1))
        else:
            raise _SyntaxProblem(
                f'{source}: "[" must hold a number or a quoted key, as in item[0] or item["a b"]'
            )
        pos = match.end()
    rest = body[pos:].strip()
    if not rest:
        return _Lookup(source, tuple(path))
    return _parse_filter(rest, source, tuple(path))


def _parse_filter(rest: str, source: str, path: tuple[str | int, ...]) -> _Lookup:
    match = _FILTER.match(rest)
    if match is None:
        raise _SyntaxProblem(
            f"{source}: unexpected {rest!r} after the path; only lookups and"
            " | default(...) are allowed (no calls or arithmetic)"
        )
    name = match.group(1)
    if name != "default":
        raise _SyntaxProblem(f'{source}: unknown filter "{name}"; the only filter is default(...)')
    args = rest[match.end() :]
    if not (args.startswith("(") and args.endswith(")")):
        raise _SyntaxProblem(
            f'{source}: write the default as default(<JSON value>), e.g. default("5s")'
        )
    literal = args[1:-1].strip()
    try:
        default = json.loads(literal)
    except (ValueError, RecursionError):
        shown = literal if len(literal) <= 60 else literal[:57] + "..."
        raise _SyntaxProblem(
            f"{source}: the default {shown!r} is not a JSON value;"
            ' use "text", a number, true, false, null, [...] or {...}'
        ) from None
    found = unusable(default)
    if found is not None:
        raise _SyntaxProblem(f"{source}: the default {found[1]}")
    return _Lookup(source, path, has_default=True, default=default)
