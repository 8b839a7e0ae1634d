"""download: streamed, atomic, size-capped and type-checked saving of assets."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dreamnodes.downloads import addresses
from dreamnodes.downloads.download import DownloadedFile, download, download_assets
from dreamnodes.errors import DreamError

MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 200
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x11" * 200
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x22" * 200

Handler = Callable[[httpx.Request], httpx.Response]

# The made-up hosts these tests fetch from resolve to a public address (no DNS needed).
PUBLIC_IP = "93.184.215.14"
FAKE_DNS = {"cdn.example": PUBLIC_IP, "c.ex": PUBLIC_IP, "api.example": "93.184.215.15"}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    real = addresses.resolve

    async def resolve(host: str, port: int) -> list[addresses.IPAddress]:
        if host in FAKE_DNS:
            return [addresses.ipaddress.ip_address(FAKE_DNS[host])]
        return await real(host, port)

    monkeypatch.setattr(addresses, "resolve", resolve)
    monkeypatch.delenv("DREAMNODES_ALLOW_PRIVATE_URLS", raising=False)


def chunks(data: bytes, size: int = 64, fail_after: BaseException | None = None) -> Any:
    """An async body that yields `data` in pieces, then optionally raises."""

    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(data), size):
            yield data[i : i + size]
            await asyncio.sleep(0)
        if fail_after is not None:
            raise fail_after

    return body()


def serve(
    data: bytes,
    content_type: str | None = "video/mp4",
    *,
    status: int = 200,
    length: bool = True,
    fail_after: BaseException | None = None,
    seen: list[httpx.Request] | None = None,
) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        headers = {"content-type": content_type} if content_type else {}
        if length:
            headers["content-length"] = str(len(data))
        return httpx.Response(status, headers=headers, content=chunks(data, fail_after=fail_after))

    return handler


def run(handler: Handler, url: str, directory: Path, **kwargs: Any) -> DownloadedFile:
    async def go() -> DownloadedFile:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await download(http, url, directory, **kwargs)

    return asyncio.run(go())


def fails(handler: Handler, url: str, directory: Path, **kwargs: Any) -> DreamError:
    with pytest.raises(DreamError) as info:
        run(handler, url, directory, **kwargs)
    return info.value


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- success ------------------------------------------------------------------------------


def test_video_is_saved_with_size_type_and_hash(tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir"
    result = run(serve(MP4), "https://cdn.example/v/clip.mp4?sig=abc", out, chunk_size=32)
    assert result.path == str(out / "clip.mp4")
    assert Path(result.path).read_bytes() == MP4
    assert result.bytes == len(MP4)
    assert result.content_type == "video/mp4"
    assert result.sha256 == hashlib.sha256(MP4).hexdigest()
    assert files_in(out) == ["clip.mp4"]


def test_filename_without_extension_takes_the_contents(tmp_path: Path) -> None:
    result = run(serve(PNG, "image/png"), "https://cdn.example/x", tmp_path, filename="poster")
    assert Path(result.path).name == "poster.png"


def test_octet_stream_is_sniffed_from_the_first_bytes(tmp_path: Path) -> None:
    result = run(serve(JPEG, "application/octet-stream"), "https://cdn.example/a", tmp_path)
    assert Path(result.path).name == "a.jpg"
    result = run(serve(MP4, None), "https://cdn.example/b", tmp_path, filename="b.mp4")
    assert Path(result.path).read_bytes() == MP4


def test_success_replaces_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"old")
    run(serve(MP4), "https://cdn.example/clip.mp4", tmp_path)
    assert (tmp_path / "clip.mp4").read_bytes() == MP4


def test_download_assets_names_files_after_the_generation(tmp_path: Path) -> None:
    bodies = {"/v.mp4": (MP4, "video/mp4"), "/i": (PNG, "image/png")}

    def handler(request: httpx.Request) -> httpx.Response:
        data, kind = bodies[request.url.path]
        return httpx.Response(200, headers={"content-type": kind}, content=data)

    generation = {
        "id": "7ca76429-99d1-46ab-bb2e-84baa4acdb04",
        "assets": {"video": "https://cdn.example/v.mp4", "image": "https://cdn.example/i"},
    }

    async def go() -> dict[str, str]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await download_assets(http, generation, tmp_path)

    files = asyncio.run(go())
    assert files == {
        "video": str(tmp_path / "7ca76429-99d1-46ab-bb2e-84baa4acdb04.mp4"),
        "image": str(tmp_path / "7ca76429-99d1-46ab-bb2e-84baa4acdb04.png"),
    }
    assert Path(files["video"]).read_bytes() == MP4


def test_download_assets_refuses_a_path_like_id_before_sending(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    async def go() -> None:
        transport = httpx.MockTransport(serve(MP4, seen=seen))
        async with httpx.AsyncClient(transport=transport) as http:
            gen = {"id": "../../etc/x", "assets": {"video": "https://cdn.example/v.mp4"}}
            await download_assets(http, gen, tmp_path)

    with pytest.raises(DreamError) as info:
        asyncio.run(go())
    assert (info.value.code, info.value.field) == ("invalid_input", "id")
    assert seen == []


def test_download_assets_refuses_an_image_where_a_video_was_promised(tmp_path: Path) -> None:
    async def go() -> None:
        transport = httpx.MockTransport(serve(PNG, "image/png"))
        async with httpx.AsyncClient(transport=transport) as http:
            await download_assets(
                http, {"id": "g1", "assets": {"video": "https://c.ex/v"}}, tmp_path
            )

    with pytest.raises(DreamError, match=r"expected a video .* got image/png"):
        asyncio.run(go())
    assert files_in(tmp_path) == []


# --- content type -------------------------------------------------------------------------


def test_extension_that_disagrees_with_the_content_type_names_both(tmp_path: Path) -> None:
    err = fails(serve(MP4, "video/mp4"), "https://cdn.example/x", tmp_path, filename="x.png")
    assert (err.code, err.field) == ("invalid_input", "filename")
    assert "'.png'" in err.message and "'video/mp4'" in err.message
    assert files_in(tmp_path) == []


def test_content_type_that_disagrees_with_the_bytes_is_refused(tmp_path: Path) -> None:
    err = fails(serve(JPEG, "image/png"), "https://cdn.example/x", tmp_path)
    assert err.code == "provider_error"
    assert "image/png" in err.message and "JPEG" in err.message
    assert files_in(tmp_path) == []


def test_an_html_page_is_not_saved_as_a_video(tmp_path: Path) -> None:
    err = fails(serve(b"<html>login</html>", "text/html"), "https://c.ex/v.mp4", tmp_path)
    assert err.code == "provider_error" and "text/html" in err.message
    assert files_in(tmp_path) == []


def test_unrecognised_octet_stream_is_refused(tmp_path: Path) -> None:
    err = fails(
        serve(b"just some bytes here", "application/octet-stream"), "https://c.ex/a", tmp_path
    )
    assert "not a known video or image" in err.message
    assert files_in(tmp_path) == []


# --- size cap -----------------------------------------------------------------------------


def test_content_length_over_the_cap_fails_before_reading(tmp_path: Path) -> None:
    read: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        read.append(1)
        yield MP4

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "video/mp4", "content-length": str(3 * 1024**2)}
        return httpx.Response(200, headers=headers, content=body())

    err = fails(handler, "https://cdn.example/v.mp4", tmp_path, max_bytes=1024**2)
    assert err.field == "url"
    assert "3.0 MiB (3,145,728 bytes)" in err.message and "1.0 MiB (1,048,576 bytes)" in err.message
    assert read == []
    assert files_in(tmp_path) == []


def test_body_growing_past_the_cap_fails_mid_stream(tmp_path: Path) -> None:
    big = MP4 + b"\x00" * 5000
    err = fails(serve(big, length=False), "https://c.ex/v.mp4", tmp_path, max_bytes=1000)
    assert "more than the cap of 1,000 bytes" in err.message
    assert files_in(tmp_path) == []


def test_cap_must_be_positive(tmp_path: Path) -> None:
    err = fails(serve(MP4), "https://c.ex/v.mp4", tmp_path, max_bytes=0)
    assert (err.code, err.field) == ("invalid_input", "max_bytes")


# --- names and URLs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../x.mp4",
        "a/b.mp4",
        "a\\b.mp4",
        ".hidden.mp4",
        "..",
        ".",
        "",
        "x..mp4",
        "/etc/x.mp4",
        "clip.mp4\x00.png",
        "clip.txt",
        "C:clip.mp4",
    ],
)
def test_unsafe_or_unknown_filenames_are_refused_before_sending(tmp_path: Path, name: str) -> None:
    seen: list[httpx.Request] = []
    err = fails(serve(MP4, seen=seen), "https://c.ex/v.mp4", tmp_path, filename=name)
    assert (err.code, err.field) == ("invalid_input", "filename")
    assert seen == []
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("url", ["ftp://c.ex/v.mp4", "file:///etc/passwd", "v.mp4", "https://"])
def test_only_http_urls_are_fetched(tmp_path: Path, url: str) -> None:
    seen: list[httpx.Request] = []
    err = fails(serve(MP4, seen=seen), url, tmp_path)
    assert (err.code, err.field) == ("invalid_input", "url")
    assert seen == []


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (404, "not_found", False),
        (401, "auth_failed", False),
        (403, "auth_failed", False),
        (500, "provider_error", True),
        (400, "provider_error", False),
        (304, "provider_error", False),
    ],
)
def test_http_errors_map_to_codes(tmp_path: Path, status: int, code: str, retryable: bool) -> None:
    err = fails(
        serve(b"nope", "text/plain", status=status), "https://c.ex/v.mp4?sig=SECRET", tmp_path
    )
    assert (err.code, err.status, err.retryable) == (code, status, retryable)
    assert "SECRET" not in err.message  # signed query strings stay out of errors
    assert files_in(tmp_path) == []


def test_credentials_never_go_to_another_origin(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers["host"] == "api.example":
            return httpx.Response(302, headers={"location": "https://cdn.example/v.mp4"})
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)

    async def go() -> DownloadedFile:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(handler),
            base_url="https://api.example/v1",
            headers={"Authorization": "Bearer luma-KEY", "Ocp-Apim-Subscription-Key": "px-KEY"},
        ) as http:
            return await download(http, "https://api.example/v1/assets/1", tmp_path)

    result = asyncio.run(go())
    assert Path(result.path).name == "1.mp4"
    assert [r.headers["host"] for r in seen] == ["api.example", "cdn.example"]
    # each hop went to the address that was checked, under its own name
    assert [r.url.host for r in seen] == [FAKE_DNS["api.example"], FAKE_DNS["cdn.example"]]
    assert seen[0].headers["authorization"] == "Bearer luma-KEY"
    assert "authorization" not in seen[1].headers
    assert "ocp-apim-subscription-key" not in seen[1].headers


# --- interruptions ------------------------------------------------------------------------


def test_stream_dropping_mid_way_leaves_no_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"old")
    handler = serve(MP4, fail_after=httpx.ReadError("connection reset"))
    err = fails(handler, "https://c.ex/clip.mp4", tmp_path)
    assert err.code == "network_error" and err.retryable
    assert files_in(tmp_path) == ["clip.mp4"]
    assert (tmp_path / "clip.mp4").read_bytes() == b"old"


def test_keyboard_interrupt_mid_stream_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(serve(MP4, fail_after=KeyboardInterrupt()), "https://c.ex/clip.mp4", tmp_path)
    assert files_in(tmp_path) == []


def test_cancellation_mid_stream_leaves_no_file(tmp_path: Path) -> None:
    async def go() -> None:
        halfway = asyncio.Event()

        async def body() -> AsyncIterator[bytes]:
            yield MP4
            halfway.set()
            await asyncio.sleep(30)
            yield b"never"

        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"content-type": "video/mp4"}, content=body())

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            task = asyncio.create_task(
                download(http, "https://c.ex/clip.mp4", tmp_path, chunk_size=64)
            )
            await halfway.wait()
            assert any(name.endswith(".part") for name in files_in(tmp_path))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(go())
    assert files_in(tmp_path) == []


# --- a real server --------------------------------------------------------------------------


class StreamingHandler(http.server.BaseHTTPRequestHandler):
    """Streams `size` bytes of MP4-looking data; `/drop` closes the connection half-way."""

    size = 3 * 1024**2 + 17

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(self.size))
        self.end_headers()
        stop = self.size // 2 if self.path == "/drop" else self.size
        sent = 0
        for piece in body_pieces(self.size):
            if sent + len(piece) > stop:
                self.wfile.write(piece[: stop - sent])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(piece)
            sent += len(piece)

    def log_message(self, *args: Any) -> None:
        pass


def body_pieces(size: int) -> Iterator[bytes]:
    block = (MP4 + bytes(range(256)) * 300)[:65536]
    for start in range(0, size, len(block)):
        yield block[: min(len(block), size - start)]


@pytest.fixture
def local_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StreamingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def real(url: str, directory: Path) -> DownloadedFile:
    async def go() -> DownloadedFile:
        async with httpx.AsyncClient() as http:
            # loopback is not public: the test server needs the opt-in
            return await download(
                http, url, directory, filename="clip.mp4", allow_private_urls=True
            )

    return asyncio.run(go())


def test_real_server_download_matches_what_was_sent(local_server: str, tmp_path: Path) -> None:
    result = real(f"{local_server}/full", tmp_path)
    expected = hashlib.sha256(b"".join(body_pieces(StreamingHandler.size)))
    assert result.bytes == StreamingHandler.size
    assert result.sha256 == expected.hexdigest()
    assert os.path.getsize(result.path) == StreamingHandler.size
    assert files_in(tmp_path) == ["clip.mp4"]


def test_real_server_dropping_half_way_leaves_no_file(local_server: str, tmp_path: Path) -> None:
    with pytest.raises(DreamError) as info:
        real(f"{local_server}/drop", tmp_path)
    assert info.value.code == "network_error"
    assert files_in(tmp_path) == []
