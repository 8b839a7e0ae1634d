"""Streaming downloads of generated assets: safe by default, constant memory, atomic, size-capped.

- Only public addresses are fetched, plus the provider's own origin, on every redirect hop
  (`dreamnodes.downloads.addresses`); `allow_private_urls=True` (or
  `DREAMNODES_ALLOW_PRIVATE_URLS=1`) opts out.
- Media is asked for as identity; a body that still comes gzip- or deflate-encoded is inflated
  piece by piece with the decoded bytes counted against the same cap (any other encoding is
  refused), so a compression bomb costs a few MB of memory, not the size it expands to.
- The first bytes must be the media type the server declared (`dreamnodes.downloads.mediatypes`).
- The body streams into a temporary file next to its target, hashed as it goes, and only an
  fsync and `os.replace` make it visible (`dreamnodes.downloads.partfiles`): on any failure
  (HTTP error, cap exceeded, wrong content, dropped connection, cancellation) the temporary file
  is removed and the target is untouched; stale temporary files of killed processes are swept.
Its public API and the orchestration of one download (about 300 lines); the guard, fetching,
sniffing and temporary files live in their own modules beside it.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

import httpx

from dreamnodes.downloads.addresses import AddressGuard
from dreamnodes.downloads.fetch import body, check_url, http_error, open_stream, shown_url
from dreamnodes.downloads.mediatypes import FORMATS, SNIFF_BYTES, Kind, MediaFormat, choose_format
from dreamnodes.downloads.mediatypes import format_for_extension as format_for_extension
from dreamnodes.downloads.mediatypes import format_for_mime as format_for_mime
from dreamnodes.downloads.mediatypes import sniff as sniff
from dreamnodes.downloads.partfiles import PartFile, in_thread, sweep_stale
from dreamnodes.errors import DreamError

__all__ = ["DownloadedFile", "MediaFormat", "download", "download_assets"]

DEFAULT_MAX_BYTES: Final = 2 * 1024**3
_ASSET_KINDS: Final[tuple[Kind, ...]] = ("video", "image")
_PLAIN_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]*")


@dataclass(frozen=True)
class DownloadedFile:
    """A file saved by `download`: where, how many bytes, the type the server gave, its SHA-256."""

    path: str
    bytes: int
    content_type: str | None
    sha256: str


async def download(
    http: httpx.AsyncClient,
    url: str,
    directory: str | os.PathLike[str],
    *,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    expect: Kind | None = None,
    chunk_size: int = 1 << 20,
    allow_private_urls: bool = False,
    provider_url: str | None = None,
) -> DownloadedFile:
    """Stream `url` into `directory`, atomically, and return what was saved.

    `filename` must be a plain name; without an extension (or without a name at all) the
    extension comes from the content. The extension must agree with the content type (and the
    first bytes), and with `expect` when given. Only public addresses are fetched, plus the
    origin (scheme, host, port) of `provider_url`, the provider base URL of the run; all
    addresses with `allow_private_urls=True` or `DREAMNODES_ALLOW_PRIVATE_URLS=1`.
    """
    stem, ext = _split_filename(filename) if filename is not None else (None, None)
    guard = AddressGuard.make(allow_private_urls=allow_private_urls, provider_url=provider_url)
    return await _download(
        http,
        url,
        directory,
        stem=stem,
        ext=ext,
        max_bytes=max_bytes,
        expect=expect,
        chunk_size=chunk_size,
        guard=guard,
        field="url",
    )


async def download_assets(
    http: httpx.AsyncClient,
    generation: Mapping[str, Any],
    directory: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_private_urls: bool = False,
    provider_url: str | None = None,
) -> dict[str, str]:
    """Save a normalised generation's video and/or image as `DIR/<id>.mp4` / `DIR/<id>.jpg|.png`.

    Returns `{"video": path, "image": path}` for what it saved. Addresses are guarded as in
    `download`; pass the run's provider base URL as `provider_url`.
    """
    gen_id = generation.get("id")
    if not isinstance(gen_id, str) or not _is_plain_name(gen_id):
        raise DreamError(
            "invalid_input",
            f"generation id {gen_id!r} cannot name a file: it must be a plain name",
            field="id",
        )
    assets = generation.get("assets") or {}
    if not isinstance(assets, Mapping):
        raise DreamError(
            "provider_error", "the generation's assets are not an object", field="assets"
        )
    guard = AddressGuard.make(allow_private_urls=allow_private_urls, provider_url=provider_url)
    saved: dict[str, str] = {}
    for kind in _ASSET_KINDS:
        url = assets.get(kind)
        if not url:
            continue
        if not isinstance(url, str):
            raise DreamError("provider_error", f"the {kind} asset is not a URL", field="assets")
        result = await _download(
            http,
            url,
            directory,
            stem=gen_id,
            ext=None,
            max_bytes=max_bytes,
            expect=kind,
            guard=guard,
            field=f"assets.{kind}",
        )
        saved[kind] = result.path
    return saved


# --- checks -------------------------------------------------------------------------------


def _is_plain_name(name: str) -> bool:
    return (
        0 < len(name) <= 200
        and _PLAIN_NAME.fullmatch(name) is not None
        and ".." not in name
        and not name.endswith((".", " "))
    )


def _split_filename(filename: str) -> tuple[str, str | None]:
    if not isinstance(filename, str) or not _is_plain_name(filename):
        raise DreamError(
            "invalid_input",
            f"filename {filename!r} is not a plain file name: use letters, digits, '.', '-', "
            "'_' and spaces, starting with a letter or digit, with no path separators or '..'",
            field="filename",
        )
    stem, dot, suffix = filename.rpartition(".")
    if not dot:
        return filename, None
    ext = "." + suffix.lower()
    if format_for_extension(ext) is None:
        allowed = ", ".join(e for fmt in FORMATS for e in fmt.extensions)
        raise DreamError(
            "invalid_input",
            f"filename {filename!r} has the extension {ext!r}, which is not a video or image "
            f"type this node saves; allowed: {allowed} (or no extension to take the content's)",
            field="filename",
        )
    return stem, ext


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def _stem_from_url(url: httpx.URL) -> str:
    last = unquote(url.path.rsplit("/", 1)[-1])
    stem = last.rsplit(".", 1)[0] if "." in last else last
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:100]
    return stem if stem and _is_plain_name(stem) else "download"


# --- the download ---------------------------------------------------------------------------


async def _download(
    http: httpx.AsyncClient,
    url: str,
    directory: str | os.PathLike[str],
    *,
    stem: str | None,
    ext: str | None,
    max_bytes: int,
    expect: Kind | None,
    guard: AddressGuard,
    field: str,
    chunk_size: int = 1 << 20,
) -> DownloadedFile:
    target_url = check_url(url)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise DreamError(
            "invalid_input",
            f"max_bytes must be a positive integer, not {max_bytes!r}",
            field="max_bytes",
        )
    if expect not in (None, "video", "image"):
        raise DreamError(
            "invalid_input", f"expect must be video or image, not {expect!r}", field="expect"
        )
    chunk_size = max(int(chunk_size), SNIFF_BYTES)
    folder = os.fspath(directory)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise DreamError(
            "invalid_input",
            f"cannot create the directory {folder!r}: {exc.strerror}",
            field="directory",
        ) from None
    await in_thread(sweep_stale, folder)
    if stem is None:
        stem = _stem_from_url(target_url)

    try:
        async with open_stream(http, target_url, guard, field) as response:
            if not 200 <= response.status_code < 300:
                raise http_error(response.status_code, url)
            content_type = response.headers.get("content-type")
            length = response.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise DreamError(
                    "invalid_input",
                    f"{shown_url(url)} is {_size(int(length))}, over the cap of {_size(max_bytes)}",
                    field="url",
                    status=response.status_code,
                )
            chunks = body(response, chunk_size, shown_url(url))
            return await _save(
                response, chunks, url, folder, stem, ext, max_bytes, expect, content_type
            )
    except httpx.TimeoutException as exc:
        raise DreamError(
            "timeout",
            f"downloading {shown_url(url)} timed out ({type(exc).__name__})",
            field="url",
            retryable=True,
        ) from None
    except httpx.HTTPError as exc:
        raise DreamError(
            "network_error",
            f"downloading {shown_url(url)} failed: {type(exc).__name__}: {exc}",
            field="url",
            retryable=True,
        ) from None


async def _save(
    response: httpx.Response,
    chunks: AsyncIterator[bytes],
    url: str,
    folder: str,
    stem: str,
    ext: str | None,
    max_bytes: int,
    expect: Kind | None,
    content_type: str | None,
) -> DownloadedFile:
    shown = shown_url(url)
    head = bytearray()
    async for chunk in chunks:
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break
    if not head:
        raise DreamError(
            "provider_error",
            f"{shown} answered with an empty body",
            field="url",
            status=response.status_code,
        )
    fmt = choose_format(
        content_type, bytes(head[:SNIFF_BYTES]), ext, shown, filename_given=ext is not None
    )
    if expect is not None and fmt.kind != expect:
        raise DreamError(
            "provider_error",
            f"expected a {expect} from {shown} but got {fmt.mime}",
            field="url",
        )
    target = os.path.join(folder, stem + (ext or fmt.extensions[0]))
    part = PartFile(folder, stem)
    try:
        pending = bytes(head)
        while True:
            if part.size + len(pending) > max_bytes:
                raise DreamError(
                    "invalid_input",
                    f"{shown} sent more than the cap of {_size(max_bytes)}",
                    field="url",
                    status=response.status_code,
                )
            await part.write(pending)
            next_chunk = await anext(chunks, None)
            if next_chunk is None:
                break
            pending = next_chunk
        await part.commit(target)
    finally:
        part.discard()
    return DownloadedFile(os.path.abspath(target), part.size, content_type, part.digest.hexdigest())
