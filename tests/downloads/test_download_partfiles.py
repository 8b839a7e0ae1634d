"""No partial file survives a download: not a failure, not a cancellation, not a killed process."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dreamnodes.downloads.download import download
from dreamnodes.downloads.partfiles import STALE_AFTER, sweep_stale

MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(range(256)) * 8
HOUR_AGO = time.time() - 3600


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def age(path: Path, when: float = HOUR_AGO) -> Path:
    os.utime(path, (when, when))
    return path


# --- cancellation and errors ------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_cancellation_mid_stream_leaves_no_file(tmp_path: Path, encoding: str | None) -> None:
    payload = MP4 * 200
    data = gzip.compress(payload) if encoding else payload

    async def go() -> None:
        halfway = asyncio.Event()

        async def body() -> AsyncIterator[bytes]:
            yield data[: len(data) // 2]
            halfway.set()
            await asyncio.sleep(30)
            yield data[len(data) // 2 :]

        def handler(request: httpx.Request) -> httpx.Response:
            headers = {"content-type": "video/mp4"}
            if encoding:
                headers["content-encoding"] = encoding
            return httpx.Response(200, headers=headers, content=body())

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            task = asyncio.create_task(
                download(
                    http, "http://h/clip.mp4", tmp_path, chunk_size=64, allow_private_urls=True
                )
            )
            await halfway.wait()
            for _ in range(100):  # until the first half is on disk
                if any(name.endswith(".part") for name in files_in(tmp_path)):
                    break
                await asyncio.sleep(0.01)
            assert any(name.endswith(".part") for name in files_in(tmp_path))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(go())
    assert files_in(tmp_path) == []


def test_a_refused_download_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "keep.mp4").write_bytes(b"old")

    async def go() -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4 * 100)

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            await download(
                http, "http://h/keep.mp4", tmp_path, max_bytes=1000, allow_private_urls=True
            )

    with pytest.raises(Exception, match="cap"):
        asyncio.run(go())
    assert files_in(tmp_path) == ["keep.mp4"]
    assert (tmp_path / "keep.mp4").read_bytes() == b"old"


# --- stale temporary files of killed processes ------------------------------------------------


def test_only_our_own_stale_temporary_files_are_swept(tmp_path: Path) -> None:
    def old_file(name: str) -> Path:
        path = tmp_path / name
        path.write_bytes(b"x")
        return age(path)

    ours_old = old_file(".clip.dreamnodes-0123456789ab.part")
    ours_older_style = old_file(".7ca76429-99d1.0123456789ab.part")  # before the marker
    ours_fresh = tmp_path / ".clip.dreamnodes-ba9876543210.part"
    ours_fresh.write_bytes(b"x")
    others = [
        old_file("clip.part"),  # a browser's
        old_file(".clip.mp4.part"),
        old_file(".clip.dreamnodes-0123456789ab.partial"),
        old_file(".clip.dreamnodes-XYZ.part"),
        old_file("movie.mp4"),
    ]
    folder_like_ours = tmp_path / ".dir.dreamnodes-0123456789ab.part"
    folder_like_ours.mkdir()
    age(folder_like_ours)

    removed = sweep_stale(str(tmp_path))

    assert sorted(removed) == sorted([ours_old.name, ours_older_style.name])
    assert not ours_old.exists() and not ours_older_style.exists()
    assert ours_fresh.exists() and folder_like_ours.is_dir()
    assert all(path.exists() for path in others)


def test_sweep_keeps_files_younger_than_the_threshold(tmp_path: Path) -> None:
    recent = tmp_path / ".clip.dreamnodes-0123456789ab.part"
    recent.write_bytes(b"x")
    age(recent, time.time() - STALE_AFTER + 60)
    assert sweep_stale(str(tmp_path)) == []
    assert sweep_stale(str(tmp_path / "missing")) == []


def test_a_download_sweeps_its_folder_first(tmp_path: Path) -> None:
    stale = tmp_path / ".clip.dreamnodes-0123456789ab.part"
    stale.write_bytes(b"half a video")
    age(stale)

    async def go() -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            await download(http, "http://h/other.mp4", tmp_path, allow_private_urls=True)

    asyncio.run(go())
    assert files_in(tmp_path) == ["other.mp4"]


class SlowHandler(http.server.BaseHTTPRequestHandler):
    """Sends the head of a video, then nothing for a long time."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(MP4) * 1000))
        self.end_headers()
        self.wfile.write(MP4)
        self.wfile.flush()
        time.sleep(20)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_downloads_part_file_is_swept_by_the_next_download(
    slow_server: str, tmp_path: Path
) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, httpx
        from dreamnodes.downloads.download import download

        async def main():
            async with httpx.AsyncClient(timeout=60) as http:
                await download(http, "{slow_server}/clip.mp4", {str(tmp_path)!r},
                               chunk_size=64, allow_private_urls=True)

        asyncio.run(main())
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 20
        while not any(n.endswith(".part") for n in files_in(tmp_path)):
            assert child.poll() is None and time.monotonic() < deadline, "no .part file appeared"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    (part,) = [tmp_path / n for n in files_in(tmp_path)]
    assert part.name.startswith(".clip.dreamnodes-") and part.name.endswith(".part")

    age(part)  # as if it had been lying there for an hour

    async def next_download() -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"content-type": "video/mp4"}, content=MP4)

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            await download(http, "http://h/next.mp4", tmp_path, allow_private_urls=True)

    asyncio.run(next_download())
    assert files_in(tmp_path) == ["next.mp4"]
