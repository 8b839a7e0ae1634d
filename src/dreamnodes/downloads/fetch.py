"""One download's body as a bounded stream: a guarded GET that follows redirects by hand.

Every hop's address is checked by the run's `AddressGuard` and the request is sent to the
address that was checked; credentials (the API key headers) never leave the API's own origin;
media is asked for as identity, and a body that still comes gzip- or deflate-encoded is
inflated piece by piece, never whole, so the caller's size cap counts decoded bytes and a
compression bomb costs a few MB of memory. Any other encoding is refused.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterator
from typing import Final
from urllib.parse import urlsplit

import httpx

from dreamnodes.downloads.addresses import AddressGuard, IPAddress, origin_of
from dreamnodes.errors import DreamError, ErrorCode

__all__ = ["body", "check_url", "http_error", "open_stream", "shown_url"]

MAX_REDIRECTS: Final = 5
# Headers that carry a credential: never sent to another origin than the API's own.
_CREDENTIAL_HEADERS: Final = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "ocp-apim-subscription-key",
    "x-api-key",
)
# Content-Encodings inflated under the cap (wbits 47: a zlib or gzip header, told apart by zlib).
_INFLATED: Final = frozenset({"gzip", "x-gzip", "deflate"})
_WBITS: Final = 32 + zlib.MAX_WBITS


def check_url(url: str) -> httpx.URL:
    """`url` parsed, or DreamError `invalid_input` on `url` when it is not an http(s) URL."""
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else None
    except (httpx.InvalidURL, ValueError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise DreamError(
            "invalid_input",
            f"url {shown_url(url)!r} is not an http(s) URL",
            field="url",
        )
    return parsed


def shown_url(url: object) -> str:
    """A URL as errors show it: without credentials, query or fragment (signed tokens)."""
    if not isinstance(url, str):
        return repr(url)
    parts = urlsplit(url)
    if not parts.scheme:
        return url[:100]
    try:
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        host, port = parts.netloc.rpartition("@")[2], ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"[:300]


def http_error(status: int, url: str) -> DreamError:
    code: ErrorCode
    if status in (404, 410):
        code, retryable = "not_found", False
    elif status in (401, 403):
        code, retryable = "auth_failed", False
    elif status == 429:
        code, retryable = "rate_limited", True
    else:
        code, retryable = "provider_error", status in (408, 500, 502, 503, 504)
    return DreamError(
        code,
        f"downloading {shown_url(url)} failed: HTTP {status}",
        field="url",
        status=status,
        retryable=retryable,
    )


@contextlib.asynccontextmanager
async def open_stream(
    http: httpx.AsyncClient, url: httpx.URL, guard: AddressGuard, field: str
) -> AsyncIterator[httpx.Response]:
    """GET `url`, following redirects by hand: every hop's address is checked (and connected
    to as checked), and credentials never leave the API's origin."""
    api_origin = origin_of(http.base_url) if http.base_url.host else None
    first = shown_url(str(url))
    for hop in range(MAX_REDIRECTS + 1):
        shown = first if hop == 0 else f"{first} (redirected to {shown_url(str(url))})"
        address = await guard.check(url, field=field, shown=shown)
        request = _build_request(http, url, address)
        if origin_of(url) != api_origin:
            for name in _CREDENTIAL_HEADERS:
                request.headers.pop(name, None)
            response = await http.send(request, stream=True, follow_redirects=False, auth=None)
        else:
            response = await http.send(request, stream=True, follow_redirects=False)
        try:
            location = response.headers.get("location")
            if response.is_redirect and location:
                url = check_url(str(url.join(location)))
                continue
            yield response
            return
        finally:
            await response.aclose()
    raise DreamError("provider_error", f"too many redirects from {first}", field="url")


def _build_request(
    http: httpx.AsyncClient, url: httpx.URL, address: IPAddress | None
) -> httpx.Request:
    """The GET for `url`; with a checked `address`, sent to that IP under the URL's own name.

    The `Host` header and the TLS server name (so the certificate check) stay the URL's; the
    connection is not kept for reuse, since another name on the same IP must not share it
    (`Connection: close`: HTTP/1.1, the only HTTP the package's clients speak).
    """
    # identity: media is compressed already, and an encoded body could expand past the cap
    headers = {"Accept-Encoding": "identity"}
    if address is None or url.host == str(address):
        return http.build_request("GET", url, headers=headers)
    headers["Host"] = url.netloc.decode("ascii")
    headers["Connection"] = "close"
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    return http.build_request(
        "GET", url.copy_with(host=str(address)), headers=headers, extensions=extensions
    )


def body(response: httpx.Response, chunk_size: int, shown: str) -> AsyncIterator[bytes]:
    """The body as it is to be saved: raw, or inflated piece by piece (never whole)."""
    if response.is_stream_consumed:
        # read whole already (a canned answer: a test's mock, a cassette), and decoded by httpx
        return response.aiter_bytes(chunk_size)
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return response.aiter_raw(chunk_size)
    if encoding not in _INFLATED:
        raise DreamError(
            "provider_error",
            f"{shown} answered with Content-Encoding {encoding!r} although identity was "
            "asked for; only gzip and deflate are decoded",
            field="url",
            status=response.status_code,
        )
    return _inflate(response.aiter_raw(chunk_size), chunk_size, encoding, shown)


async def _inflate(
    raw: AsyncIterator[bytes], piece: int, encoding: str, shown: str
) -> AsyncIterator[bytes]:
    """Inflate `raw` into pieces of at most `piece` bytes: memory stays bounded whatever the
    ratio, and the caller's cap counts decoded bytes. Concatenated gzip members are read on."""
    inflater = zlib.decompressobj(_WBITS)
    try:
        async for chunk in raw:
            data = chunk
            while data:
                out = inflater.decompress(data, piece)
                data = inflater.unconsumed_tail
                if inflater.eof:
                    data = data or inflater.unused_data
                    if data:
                        inflater = zlib.decompressobj(_WBITS)
                if out:
                    yield out
        out = inflater.flush()
    except zlib.error as exc:
        raise DreamError(
            "provider_error", f"{shown}: the {encoding} body is corrupt ({exc})", field="url"
        ) from None
    if out:
        yield out
    if not inflater.eof:
        raise DreamError(
            "provider_error", f"{shown}: the {encoding} body ends before its end", field="url"
        )
