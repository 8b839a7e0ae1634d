"""Streaming downloads of generated assets: constant memory, atomic, size-capped, type-checked.

A download streams into a temporary file next to its target, hashing as it goes, and only an
fsync and `os.replace` make it visible: on any failure (HTTP error, cap exceeded, wrong content,
dropped connection, cancellation) the temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar
from urllib.parse import unquote, urlsplit

import httpx

from .errors import DreamError, ErrorCode

__all__ = ["DownloadedFile", "MediaFormat", "download", "download_assets"]

T = TypeVar("T")
Kind = Literal["video", "image"]

DEFAULT_MAX_BYTES: Final = 2 * 1024**3
_SNIFF_BYTES: Final = 16
_MAX_REDIRECTS: Final = 5
# Headers that carry a credential: never sent to another origin than the API's own.
_CREDENTIAL_HEADERS: Final = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "ocp-apim-subscription-key",
    "x-api-key",
)
_GENERIC_TYPES: Final = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/binary"}
)
_ASSET_KINDS: Final[tuple[Kind, ...]] = ("video", "image")
_PLAIN_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]*")


@dataclass(frozen=True)
class MediaFormat:
    """A media type we save: its kind, MIME type, extensions (first preferred) and magic."""

    kind: Kind
    mime: str
    extensions: tuple[str, ...]
    signature: str
    aliases: tuple[str, ...] = ()


FORMATS: Final = (
    MediaFormat("video", "video/mp4", (".mp4", ".m4v"), "isobmff", ("video/x-m4v",)),
    MediaFormat("video", "video/quicktime", (".mov",), "isobmff"),
    MediaFormat("video", "video/webm", (".webm",), "ebml"),
    MediaFormat("video", "video/x-matroska", (".mkv",), "ebml"),
    MediaFormat("image", "image/jpeg", (".jpg", ".jpeg"), "jpeg", ("image/jpg", "image/pjpeg")),
    MediaFormat("image", "image/png", (".png",), "png"),
    MediaFormat("image", "image/gif", (".gif",), "gif"),
    MediaFormat("image", "image/webp", (".webp",), "webp"),
)
_SIGNATURE_NAMES: Final = {
    "isobmff": "an MP4/QuickTime file",
    "ebml": "a WebM/Matroska file",
    "jpeg": "a JPEG image",
    "png": "a PNG image",
    "gif": "a GIF image",
    "webp": "a WebP image",
}


@dataclass(frozen=True)
class DownloadedFile:
    """A file saved by `download`: where, how many bytes, the type the server gave, its SHA-256."""

    path: str
    bytes: int
    content_type: str | None
    sha256: str


def format_for_mime(mime: str) -> MediaFormat | None:
    mime = mime.split(";", 1)[0].strip().lower()
    for fmt in FORMATS:
        if mime == fmt.mime or mime in fmt.aliases:
            return fmt
    return None


def format_for_extension(ext: str) -> MediaFormat | None:
    ext = ext.lower()
    return next((fmt for fmt in FORMATS if ext in fmt.extensions), None)


def sniff(head: bytes) -> str | None:
    """The signature the first bytes show (`isobmff`, `ebml`, `jpeg`, `png`, `gif`, `webp`)."""
    if head[4:8] == b"ftyp":
        return "isobmff"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "ebml"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


async def download(
    http: httpx.AsyncClient,
    url: str,
    directory: str | os.PathLike[str],
    *,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    expect: Kind | None = None,
    chunk_size: int = 1 << 20,
) -> DownloadedFile:
    """Stream `url` into `directory`, atomically, and return what was saved.

    `filename` must be a plain name; without an extension (or without a name at all) the
    extension comes from the content. The extension must agree with the content type (and the
    first bytes), and with `expect` when given.
    """
    stem, ext = _split_filename(filename) if filename is not None else (None, None)
    return await _download(
        http,
        url,
        directory,
        stem=stem,
        ext=ext,
        max_bytes=max_bytes,
        expect=expect,
        chunk_size=chunk_size,
    )


async def download_assets(
    http: httpx.AsyncClient,
    generation: Mapping[str, Any],
    directory: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, str]:
    """Save a normalised generation's video and/or image as `DIR/<id>.mp4` / `DIR/<id>.jpg|.png`.

    Returns `{"video": path, "image": path}` for what it saved.
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
    saved: dict[str, str] = {}
    for kind in _ASSET_KINDS:
        url = assets.get(kind)
        if not url:
            continue
        if not isinstance(url, str):
            raise DreamError("provider_error", f"the {kind} asset is not a URL", field="assets")
        result = await _download(
            http, url, directory, stem=gen_id, ext=None, max_bytes=max_bytes, expect=kind
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


def _check_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else None
    except (httpx.InvalidURL, ValueError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise DreamError(
            "invalid_input",
            f"url {_shown(url)!r} is not an http(s) URL",
            field="url",
        )
    return parsed


def _shown(url: object) -> str:
    """A URL as errors show it: without query or fragment, which may hold signed tokens."""
    if not isinstance(url, str):
        return repr(url)
    parts = urlsplit(url)
    if not parts.scheme:
        return url[:100]
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"[:300]


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


def _http_error(status: int, url: str) -> DreamError:
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
        f"downloading {_shown(url)} failed: HTTP {status}",
        field="url",
        status=status,
        retryable=retryable,
    )


def _choose_format(
    content_type: str | None, head: bytes, ext: str | None, url: str, filename_given: bool
) -> MediaFormat:
    """The format of the body, from its Content-Type and first bytes, checked against `ext`."""
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    by_header = format_for_mime(declared)
    seen = sniff(head)
    if by_header is None and declared not in _GENERIC_TYPES:
        raise DreamError(
            "provider_error",
            f"{_shown(url)} answered with Content-Type {declared!r}, not a video or image",
            field="url",
        )
    if by_header is not None and seen is not None and by_header.signature != seen:
        raise DreamError(
            "provider_error",
            f"{_shown(url)} says Content-Type {declared!r} but its bytes are "
            f"{_SIGNATURE_NAMES[seen]}",
            field="url",
        )
    if by_header is not None:
        fmt = by_header
    elif seen is not None:
        candidates = [f for f in FORMATS if f.signature == seen]
        fmt = next((f for f in candidates if ext in f.extensions), candidates[0])
    else:
        raise DreamError(
            "provider_error",
            f"{_shown(url)} answered with Content-Type {declared or 'none'!r} and bytes that "
            "are not a known video or image",
            field="url",
        )
    if ext is not None and ext not in fmt.extensions:
        raise DreamError(
            "invalid_input" if filename_given else "provider_error",
            f"the extension {ext!r} does not match the content type {fmt.mime!r} "
            f"(expected {' or '.join(fmt.extensions)})",
            field="filename" if filename_given else "url",
        )
    return fmt


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
    chunk_size: int = 1 << 20,
) -> DownloadedFile:
    target_url = _check_url(url)
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
    chunk_size = max(int(chunk_size), _SNIFF_BYTES)
    folder = os.fspath(directory)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise DreamError(
            "invalid_input",
            f"cannot create the directory {folder!r}: {exc.strerror}",
            field="directory",
        ) from None
    if stem is None:
        stem = _stem_from_url(target_url)

    try:
        async with _open_stream(http, target_url) as response:
            if not 200 <= response.status_code < 300:
                raise _http_error(response.status_code, url)
            content_type = response.headers.get("content-type")
            length = response.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise DreamError(
                    "invalid_input",
                    f"{_shown(url)} is {_size(int(length))}, over the cap of {_size(max_bytes)}",
                    field="url",
                    status=response.status_code,
                )
            return await _save(
                response, url, folder, stem, ext, max_bytes, expect, chunk_size, content_type
            )
    except httpx.TimeoutException as exc:
        raise DreamError(
            "timeout",
            f"downloading {_shown(url)} timed out ({type(exc).__name__})",
            field="url",
            retryable=True,
        ) from None
    except httpx.HTTPError as exc:
        raise DreamError(
            "network_error",
            f"downloading {_shown(url)} failed: {type(exc).__name__}: {exc}",
            field="url",
            retryable=True,
        ) from None


@contextlib.asynccontextmanager
async def _open_stream(http: httpx.AsyncClient, url: httpx.URL) -> AsyncIterator[httpx.Response]:
    """GET `url`, following redirects by hand so that credentials never leave the API's origin."""
    api_origin = _origin(http.base_url) if http.base_url.host else None
    for _ in range(_MAX_REDIRECTS + 1):
        # identity: a compressed body could expand past the cap inside a single chunk
        request = http.build_request("GET", url, headers={"Accept-Encoding": "identity"})
        foreign = _origin(url) != api_origin
        if foreign:
            for name in _CREDENTIAL_HEADERS:
                request.headers.pop(name, None)
        if foreign:
            response = await http.send(request, stream=True, follow_redirects=False, auth=None)
        else:
            response = await http.send(request, stream=True, follow_redirects=False)
        try:
            location = response.headers.get("location")
            if response.is_redirect and location:
                url = _check_url(str(url.join(location)))
                continue
            yield response
            return
        finally:
            await response.aclose()
    raise DreamError("provider_error", f"too many redirects from {_shown(str(url))}", field="url")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


async def _save(
    response: httpx.Response,
    url: str,
    folder: str,
    stem: str,
    ext: str | None,
    max_bytes: int,
    expect: Kind | None,
    chunk_size: int,
    content_type: str | None,
) -> DownloadedFile:
    chunks = response.aiter_bytes(chunk_size)
    head = bytearray()
    async for chunk in chunks:
        head += chunk
        if len(head) >= _SNIFF_BYTES:
            break
    if not head:
        raise DreamError(
            "provider_error",
            f"{_shown(url)} answered with an empty body",
            field="url",
            status=response.status_code,
        )
    fmt = _choose_format(
        content_type, bytes(head[:_SNIFF_BYTES]), ext, url, filename_given=ext is not None
    )
    if expect is not None and fmt.kind != expect:
        raise DreamError(
            "provider_error",
            f"expected a {expect} from {_shown(url)} but got {fmt.mime}",
            field="url",
        )
    target = os.path.join(folder, stem + (ext or fmt.extensions[0]))
    fd, temp = _create_temp(folder, stem)
    digest = hashlib.sha256()
    written = 0
    done = False
    try:
        pending = bytes(head)
        while True:
            if pending:
                written += len(pending)
                if written > max_bytes:
                    raise DreamError(
                        "invalid_input",
                        f"{_shown(url)} sent more than the cap of {_size(max_bytes)}",
                        field="url",
                        status=response.status_code,
                    )
                await _in_thread(_write_all, fd, pending, digest)
            next_chunk = await anext(chunks, None)
            if next_chunk is None:
                break
            pending = next_chunk
        await _in_thread(os.fsync, fd)
        os.close(fd)
        fd = -1
        os.replace(temp, target)
        done = True
        _fsync_directory(folder)
    finally:
        if fd >= 0:
            os.close(fd)
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(temp)
    return DownloadedFile(os.path.abspath(target), written, content_type, digest.hexdigest())


def _create_temp(folder: str, stem: str) -> tuple[int, str]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temp = os.path.join(folder, f".{stem[:60]}.{secrets.token_hex(6)}.part")
        try:
            # 0o666 so the umask, not mkstemp's 0o600, decides the saved file's mode
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
        except OSError as exc:
            raise DreamError(
                "invalid_input",
                f"cannot write in the directory {folder!r}: {exc.strerror}",
                field="directory",
            ) from None


def _write_all(fd: int, data: bytes, digest: Any) -> None:
    digest.update(data)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_directory(folder: str) -> None:
    # Makes the rename itself durable; not possible (nor needed) on every platform.
    with contextlib.suppress(OSError, AttributeError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking file work off the event loop. If the caller is cancelled meanwhile, wait for
    the thread to let go of the file descriptor before the cancellation goes on to clean up."""
    future = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([future])
        raise
