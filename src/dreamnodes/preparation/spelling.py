"""How a user may spell an option: any unambiguous spelling of its value or its title.

Case, spaces and punctuation do not count ("Ray 2", "ray2", "RAY-2" and "ray 2 (best)" are all
`ray-2`); a title's words in brackets may be left out or used alone ("16:9" or "landscape");
a number may stand for a number with its unit ("5", 5 and "5 seconds" for `5s`). A spelling
that fits several options is ambiguous: no option is picked, and the error names them all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["index", "key", "match", "snake"]

_BRACKETS = re.compile(r"\(([^)]*)\)")
_NUMBER_UNIT = re.compile(r"(\d+(?:\.\d+)?)(s|sec|secs|second|seconds|p)")
_NOT_KEY = re.compile(r"[^a-z0-9]+")


def key(text: str) -> str:
    """The spelling with case, spaces and punctuation taken out: "Ray 2 (best)" -> "ray2best"."""
    return "".join(c for c in text.casefold() if c.isalnum())


def _spellings(const: Any, title: str) -> Iterable[str]:
    text = const if isinstance(const, str) else json.dumps(const)
    yield key(text)
    yield key(title)
    inside = _BRACKETS.findall(title)
    if inside:
        yield key(_BRACKETS.sub(" ", title))
        yield from (key(part) for part in inside)
    for spelled in (key(text), key(title)):
        unit = _NUMBER_UNIT.fullmatch(spelled)
        if unit:
            yield unit.group(1)


def index(options: Iterable[tuple[Any, str]]) -> dict[str, tuple[int, ...]]:
    """Each spelling and the positions of the options it may mean."""
    out: dict[str, tuple[int, ...]] = {}
    for position, (const, title) in enumerate(options):
        for spelled in _spellings(const, title):
            if spelled and position not in out.get(spelled, ()):
                out[spelled] = (*out.get(spelled, ()), position)
    return out


def match(value: Any, spellings: Mapping[str, tuple[int, ...]]) -> tuple[int, ...]:
    """The positions of the options `value` may mean: one is a match, several are ambiguous.

    An exact spelling wins; else a spelling of 3 or more characters with a letter in it may
    be the start of options' spellings ("adhere" fits Adhere 1, 2 and 3).
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    spelled = key(value if isinstance(value, str) else str(value))
    if not spelled:
        return ()
    exact = spellings.get(spelled)
    if exact:
        return exact
    if len(spelled) < 3 or not any(c.isalpha() for c in spelled):
        return ()
    found: list[int] = []
    for known, positions in spellings.items():
        if known.startswith(spelled):
            found.extend(p for p in positions if p not in found)
    return tuple(sorted(found))


def snake(text: str) -> str:
    """A title as a snake_case key: "Dolly Zoom" -> "dolly_zoom"."""
    return _NOT_KEY.sub("_", text.strip().casefold()).strip("_")
