"""What a download accepts as a body: identity or bounded inflation, of the declared type."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import http.server
import struct
import threading
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dreamnodes.downloads.download import DownloadedFile, download
from dreamnodes.errors import DreamError
from dreamnodes.execution.runner import Runner

MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
MP4 = MP4_HEAD + bytes(range(256)) * 40
HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>login</body></html>"
BLOCK = 1 << 20
Handler = Callable[[httpx.Request], httpx.Response]


def gzip_bomb(blocks: int = 1024) -> bytes:
    """A valid gzip of an MP4 header and `blocks` MiB of zeros (1 GiB: about 1 MB), built
    without compressing it all: after a full flush, every MiB of zeros deflates the same."""
    first = MP4_HEAD + bytes(BLOCK - len(MP4_HEAD))
    zeros = bytes(BLOCK)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = deflate.compress(first) + deflate.flush(zlib.Z_FULL_FLUSH)
    piece = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH) == piece
    crc = zlib.crc32(first)
    for _ in range(blocks - 1):
        crc = zlib.crc32(zeros, crc)
    trailer = struct.pack("<II", crc, (blocks * BLOCK) & 0xFFFFFFFF)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + head + piece * (blocks - 1) + deflate.flush() + trailer


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = gzip_bomb()
    assert len(data) < 2 * BLOCK
    return data


def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(data), size):
            yield data[i : i + size]
            await asyncio.sleep(0)

    return body()


def serve(
    data: bytes,
    content_type: str = "video/mp4",
    encoding: str | None = None,
    size: int = 64 * 1024,
    seen: list[httpx.Request] | None = None,
) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        headers = {"content-type": content_type}
        if encoding:
            headers["content-encoding"] = encoding
        return httpx.Response(200, headers=headers, content=pieces(data, size))

    return handler


def fetch(handler: Handler, url: str, directory: Path, **kwargs: Any) -> DownloadedFile:
    async def go() -> DownloadedFile:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await download(http, url, directory, allow_private_urls=True, **kwargs)

    return asyncio.run(go())


def refused(handler: Handler, url: str, directory: Path, **kwargs: Any) -> DreamError:
    with pytest.raises(DreamError) as info:
        fetch(handler, url, directory, **kwargs)
    return info.value


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- encodings ------------------------------------------------------------------------------


def test_media_is_asked_for_as_identity(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    fetch(serve(MP4, seen=seen), "http://10.0.0.1/v.mp4", tmp_path)
    assert seen[0].headers["accept-encoding"] == "identity"


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress)],
)
def test_an_encoded_body_is_decoded(
    tmp_path: Path, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    result = fetch(serve(encode(MP4), encoding=encoding, size=100), "http://h/v.mp4", tmp_path)
    assert Path(result.path).read_bytes() == MP4
    assert result.bytes == len(MP4)


def test_concatenated_gzip_members_are_all_decoded(tmp_path: Path) -> None:
    body = gzip.compress(MP4[:1000]) + gzip.compress(MP4[1000:])
    result = fetch(serve(body, encoding="gzip", size=333), "http://h/v.mp4", tmp_path)
    assert Path(result.path).read_bytes() == MP4


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, gzip"])
def test_other_encodings_are_refused(tmp_path: Path, encoding: str) -> None:
    err = refused(serve(MP4, encoding=encoding), "http://h/v.mp4?k=SECRET", tmp_path)
    assert err.code == "provider_error" and "Content-Encoding" in err.message
    assert "SECRET" not in err.message
    assert files_in(tmp_path) == []


def test_a_truncated_gzip_body_is_refused(tmp_path: Path) -> None:
    data = gzip.compress(MP4)[:-20]
    err = refused(serve(data, encoding="gzip"), "http://h/v.mp4", tmp_path)
    assert err.code == "provider_error" and "ends before its end" in err.message
    assert files_in(tmp_path) == []


def test_a_corrupt_gzip_body_is_refused(tmp_path: Path) -> None:
    data = gzip.compress(MP4)
    data = data[:200] + bytes(100) + data[300:]
    err = refused(serve(data, encoding="gzip"), "http://h/v.mp4", tmp_path)
    assert err.code == "provider_error" and "corrupt" in err.message
    assert files_in(tmp_path) == []


def test_a_gzip_bomb_is_refused_at_the_cap_with_bounded_memory(bomb: bytes, tmp_path: Path) -> None:
    """1 GiB of zeros in about 1 MB of gzip, served in 1 MB raw pieces, behind a 5 MiB cap."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        handler = serve(bomb, encoding="gzip", size=BLOCK)
        err = refused(handler, "http://h/v.mp4", tmp_path, max_bytes=5 * BLOCK)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert err.code == "invalid_input" and "more than the cap of 5.0 MiB" in err.message
    assert peak < 100 * BLOCK, f"peak {peak / BLOCK:.1f} MiB"
    assert files_in(tmp_path) == []


# --- the gzip bomb from the issue: download_asset with max_mb 5, over a real socket ---------


class BombHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bomb = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(self.bomb)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client stops reading at its cap
            self.wfile.write(self.bomb)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def bomb_server(bomb: bytes) -> Iterator[str]:
    BombHandler.bomb = bomb
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BombHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_download_asset_refuses_a_gzip_bomb_behind_max_mb(bomb_server: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with Runner(api_key="k", base_url=bomb_server) as runner:
            params = {"url": f"{bomb_server}/x.mp4", "directory": str(tmp_path), "max_mb": 5}
            await runner.run("download_asset", params)

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        with pytest.raises(DreamError) as info:
            asyncio.run(go())
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert info.value.code == "invalid_input" and "cap of 5.0 MiB" in info.value.message
    assert peak < 100 * BLOCK, f"peak {peak / BLOCK:.1f} MiB"
    assert files_in(tmp_path) == []


# --- the first bytes must be the declared type ---------------------------------------------


def test_an_html_page_served_as_video_mp4_is_not_saved(tmp_path: Path) -> None:
    err = refused(serve(HTML), "https://c.ex/x.mp4", tmp_path, filename="x.mp4")
    assert err.code == "provider_error" and err.field == "url"
    assert "video/mp4" in err.message and "HTML" in err.message
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    ("body", "declared"),
    [
        (b'{"error": "expired signature"}', "image/png"),
        (b"\x00\x00\x00\x00" * 10, "image/jpeg"),
        (HTML, "image/webp"),
        (b"GIF89a" + bytes(40), "image/png"),
        (MP4, "image/jpeg"),
    ],
)
def test_bytes_that_are_not_the_declared_type_are_refused(
    tmp_path: Path, body: bytes, declared: str
) -> None:
    err = refused(serve(body, declared), "https://c.ex/a", tmp_path)
    assert err.code == "provider_error" and declared in err.message
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    ("body", "declared", "name"),
    [
        (b"\x00\x00\x00\x08wide" + b"\x00" * 40, "video/quicktime", "a.mov"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 40, "image/webp", "a.webp"),
        (b"GIF89a" + bytes(40), "image/gif", "a.gif"),
        (b"\x1a\x45\xdf\xa3" + bytes(40), "video/webm", "a.webm"),
    ],
)
def test_the_known_types_are_saved(tmp_path: Path, body: bytes, declared: str, name: str) -> None:
    assert Path(fetch(serve(body, declared), "https://c.ex/a", tmp_path).path).name == name
