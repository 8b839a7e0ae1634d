"""Values fit to be a run's params or context: valid Unicode text, and not absurdly nested.

Checked before templates, validation and mapping, so that a lone surrogate or a context
nested hundreds deep is a clear `invalid_input` naming where, never a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamnodes.errors import DreamError

__all__ = ["MAX_DEPTH", "NOT_UNICODE", "check_usable", "field_name", "surrogate", "unusable"]

# Deeper values are refused: no workflow needs them, and every later stage (copies, checks,
# the run log) would have to walk them. Far below Python's recursion limit.
MAX_DEPTH = 100


def check_usable(value: Any, name: str) -> None:
    """Refuse what no later stage can carry: text that is not valid Unicode, absurd nesting.

    `name` is "params" (a problem is named by its field, e.g. ``prompt`` or ``concepts[0]``)
    or "context" (the field is ``context``, the message says where in it). Raises
    DreamError("invalid_input"). Walks without recursion, so any depth is safe to check.
    """
    if _fine(value, 0):
        return
    found = unusable(value)
    if found is None:  # pragma: no cover - _fine and _unusable agree
        return
    path, problem = found
    where = _escaped(field_name(path) or name)
    if name == "params" and path:
        raise DreamError("invalid_input", f"{where}: {problem}", field=where)
    inside = f"{where}: " if path else ""
    raise DreamError("invalid_input", f"{name}: {inside}{problem}", field=name)


def _fine(value: Any, depth: int) -> bool:
    """The fast check (every node call makes it): True if nothing in `value` is unusable.

    Recursive, but never deeper than MAX_DEPTH; `_unusable` then finds where the problem is.
    """
    kind = value.__class__
    if kind is str:
        return bool(value.isascii()) or surrogate(value) is None
    if kind in _PLAIN:
        return True
    if kind is dict or isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            return False
        for key, item in value.items():
            if key.__class__ is str and not key.isascii() and surrogate(key) is not None:
                return False
            if item.__class__ is str:
                if not item.isascii() and surrogate(item) is not None:
                    return False
            elif item.__class__ not in _PLAIN and not _fine(item, depth + 1):
                return False
        return True
    if kind is list or isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            return False
        for item in value:
            if item.__class__ is str:
                if not item.isascii() and surrogate(item) is not None:
                    return False
            elif item.__class__ not in _PLAIN and not _fine(item, depth + 1):
                return False
        return True
    if isinstance(value, str):  # a subclass of str
        return value.isascii() or surrogate(value) is None
    return True


_PLAIN = frozenset({int, float, bool, type(None)})


def unusable(value: Any) -> tuple[tuple[str | int, ...], str] | None:
    """Where the first lone surrogate or too-deep part is, and what it is (None: all fine)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            bad = surrogate(item)
            if bad is not None:
                return path, NOT_UNICODE.format(bad)
        elif isinstance(item, Mapping | list | tuple):
            if len(path) >= MAX_DEPTH:  # named by where the deep part starts
                return path[:1], f"is nested more than {MAX_DEPTH} levels deep"
            if isinstance(item, Mapping):
                for key, sub in item.items():
                    bad = surrogate(key) if isinstance(key, str) else None
                    if bad is not None:
                        return path, f"a key {NOT_UNICODE.format(bad)}"
                    stack.append((sub, (*path, key if isinstance(key, str) else str(key))))
            else:
                stack.extend((sub, (*path, index)) for index, sub in enumerate(item))
    return None


NOT_UNICODE = "contains {} (half of a UTF-16 pair on its own), which is not valid Unicode text"


def surrogate(text: str) -> str | None:
    """The first lone surrogate in `text`, escaped for showing ("\\ud800"), or None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as problem:
        return _escaped(text[problem.start])
    return None


def _escaped(text: str) -> str:
    """`text` safe to print: lone surrogates written as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def field_name(field: tuple[str | int, ...]) -> str | None:
    name = ""
    for part in field:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or None
