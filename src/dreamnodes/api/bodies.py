"""Reading an API answer: its body within a size cap (also once inflated), and its wording.

API answers are small JSON documents: anything larger is refused while it streams in, before
or after decoding (the client asks for no compression; a gzip answer is inflated in bounds).
"""

from __future__ import annotations

import json as jsonlib
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_ANSWER_BYTES", "Unreadable", "detail_of", "read_capped"]

MAX_ANSWER_BYTES = 16 * 1024 * 1024
_MIB = 1024 * 1024


class Unreadable(Exception):
    """An answer whose body cannot be read: larger than the cap, or broken in its encoding."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large


async def read_capped(answer: httpx.Response, limit: int) -> bytes:
    """The answer's body, decoded, refused (`Unreadable`) past `limit` bytes or when broken.

    Raw bytes are counted as they stream in, and again after decoding, so neither a large
    answer nor a small compressed one that inflates to a large one is held in memory.
    """
    import httpx

    declared = answer.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        raise Unreadable(_too_large(f"declares {int(declared)} bytes"), too_large=True)
    try:
        content = answer.content  # a transport that hands over answers read already (mocks)
    except httpx.ResponseNotRead:
        pass
    else:
        if len(content) > limit:
            raise Unreadable(_too_large(f"has {len(content)} bytes"), too_large=True)
        return content
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in answer.aiter_raw():
            size += len(chunk)
            if size > limit:
                raise Unreadable(_too_large(f"is more than {limit} bytes"), too_large=True)
            chunks.append(chunk)
    except httpx.DecodingError as exc:  # defensive: raw bytes are not decoded by httpx
        raise Unreadable(f"an answer that cannot be decoded ({exc})") from None
    return _decoded(b"".join(chunks), answer.headers.get("content-encoding", ""), limit)


def _too_large(how: str) -> str:
    return f"an answer too large to read (it {how}; the limit is {MAX_ANSWER_BYTES // _MIB} MiB)"


def _decoded(raw: bytes, encoding: str, limit: int) -> bytes:
    """`raw` with its Content-Encoding layers undone, in bounds (identity, gzip, deflate)."""
    layers = [layer.strip().lower() for layer in encoding.split(",") if layer.strip()]
    for layer in reversed(layers):
        if layer == "identity":
            continue
        if layer in ("gzip", "x-gzip"):
            raw = _inflate(raw, zlib.MAX_WBITS | 16, "gzip", limit)
        elif layer == "deflate":
            try:
                raw = _inflate(raw, zlib.MAX_WBITS, "deflate", limit)
            except Unreadable as problem:
                if problem.too_large:
                    raise
                raw = _inflate(raw, -zlib.MAX_WBITS, "deflate", limit)  # raw deflate, no header
        else:
            raise Unreadable(f"an answer in an encoding that was not asked for ({layer!r})")
    return raw


def _inflate(data: bytes, wbits: int, name: str, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise Unreadable(f"a broken {name} body ({exc})") from None
    if len(out) > limit:
        raise Unreadable(_too_large(f"inflates to more than {limit} bytes"), too_large=True)
    if not inflater.eof:
        raise Unreadable(f"a truncated {name} body")
    return out


def detail_of(body: Any, text: str) -> tuple[str, str | None]:
    """The provider's words: Luma's `{"detail"}` (text or a list), Pixazo's error and message."""
    if isinstance(body, Mapping):
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail, None
        if isinstance(detail, list) and detail and isinstance(detail[0], Mapping):
            first = detail[0]
            loc = [str(p) for p in first.get("loc", []) if p != "body"]
            field = ".".join(loc) or None
            return "; ".join(str(d.get("msg", d)) for d in detail if isinstance(d, Mapping)), field
        parts = [str(body[k]) for k in ("error", "message") if body.get(k)]
        if parts:
            return ": ".join(parts), None
        if body:
            return jsonlib.dumps(body)[:200], None
    return (text.strip()[:200] or "no details given"), None
