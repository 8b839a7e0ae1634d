"""Secrets out of everything shown or written: error messages, log lines, records.

`scrub_text` replaces every occurrence of each secret in a text, in any letter case and in the
forms an echo takes on the way back (percent-encoded, JSON-escaped); `scrub` does the same over
a JSON value and also blanks the values of secret-named keys ("Authorization", "api_key",
"client_secret", not "max_tokens"). What comes out is also always writable: lone surrogates
become U+FFFD and a value nested deeper than `MAX_DEPTH` is cut off there.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["MAX_DEPTH", "REDACTED", "SECRET_KEY", "scrub", "scrub_text", "secret_pattern"]

REDACTED = "[redacted]"
# Keys whose values are secret whatever they hold ("max_tokens" is not a secret: token(?!s)).
SECRET_KEY = re.compile(
    r"api[\s_-]?key|authori[sz]ation|passw(?:or)?d|secret|token(?!s)|cookie", re.I
)
MAX_DEPTH = 200  # deeper parts of a value are replaced by TOO_DEEP (no RecursionError)
TOO_DEEP = "[nested too deep]"
_SURROGATE = re.compile("[\ud800-\udfff]")


def _forms(secret: str) -> set[str]:
    """The secret as a server or a serialiser may echo it back."""
    escaped = json.dumps(secret)[1:-1]
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        escaped,
        json.dumps(secret, ensure_ascii=False)[1:-1],
        escaped.replace("/", "\\/"),
    }


@functools.lru_cache(maxsize=64)
def _compiled(needles: tuple[str, ...]) -> re.Pattern[str] | None:
    forms: set[str] = set()
    for needle in needles:
        forms |= _forms(needle)
    forms.discard("")
    if not forms:
        return None
    # Longest first, so a whole "Bearer <key>" goes before the key inside it.
    alternatives = sorted(forms, key=lambda form: (-len(form), form))
    return re.compile("|".join(re.escape(form) for form in alternatives), re.IGNORECASE)


def secret_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One compiled, case-insensitive pattern for every form of every secret (None: no secrets)."""
    return _compiled(tuple(sorted({s for s in secrets if s})))


def scrub_text(text: str, secrets: Iterable[str], replacement: str = REDACTED) -> str:
    """`text` with every secret replaced, whatever its letter case or encoding on the way back."""
    pattern = secret_pattern(secrets)
    text = _writable(text)
    return text if pattern is None else pattern.sub(replacement, text)


def scrub(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of `value` with secret-named keys and every occurrence of `secrets` redacted.

    Mappings become dicts and lists, tuples and sets become lists; bytes are decoded (UTF-8,
    bad bytes replaced) and scrubbed as text; other values are kept as they are.
    """
    return _scrub(value, secret_pattern(secrets), 0)


def _scrub(value: Any, pattern: re.Pattern[str] | None, depth: int) -> Any:
    if isinstance(value, str):
        value = _writable(value)
        return value if pattern is None else pattern.sub(REDACTED, value)
    if depth >= MAX_DEPTH and isinstance(value, Mapping | list | tuple | set | frozenset):
        return TOO_DEEP
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            scrubbed = REDACTED if SECRET_KEY.search(name) else _scrub(item, pattern, depth + 1)
            out[_scrub(name, pattern, depth)] = scrubbed
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items: list[Any] = []
        for item in value:
            items.append(_scrub(item, pattern, depth + 1))
        return items
    if isinstance(value, bytes | bytearray):
        return _scrub(bytes(value).decode("utf-8", "replace"), pattern, depth)
    return value


def _writable(text: str) -> str:
    """Text that encodes as UTF-8: a lone surrogate (from a JSON "\\ud800") becomes U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text
