"""A hostile crowd for the serve commands: ~1,100 connections that send nothing, or drip one
header line every few seconds, and reconnect whenever the server closes them. Meanwhile a
real request must still be answered within a few seconds.

    with Flood(host, port, CONNECTIONS, drip=2.0) as flood:
        flood.wait_until_open(CONNECTIONS)
        ... time real requests ...
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from subprocess import Popen
from types import TracebackType
from typing import IO

import pytest

CONNECTIONS = 1100
SPARE_FDS = 256  # the test's own files, the real requests, pytest


def ensure_fd_room(connections: int = CONNECTIONS) -> None:
    """Raise this process's soft file limit to fit the crowd, or skip the test."""
    need = connections + SPARE_FDS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"needs {need} open files; the hard limit is {hard} (ulimit -Hn)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


class Flood:
    """`connections` sockets to host:port on a thread of their own. With `drip` each sends a
    request line and then one header line every `drip` seconds, never ending its head;
    without, each sends nothing. A closed one reconnects after `pause` seconds."""

    def __init__(
        self, host: str, port: int, connections: int, drip: float | None, pause: float = 0.5
    ) -> None:
        self.host, self.port = host, port
        self.connections = connections
        self.drip = drip
        self.pause = pause
        self.connects = 0  # successful connects so far
        self.open = 0  # currently connected (as far as the client knows)
        self.closed_by_server = 0
        self._stop: asyncio.Event | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        tasks = [asyncio.create_task(self._one()) for _ in range(self.connections)]
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _one(self) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(self.pause)
                continue
            self.connects += 1
            self.open += 1
            try:
                await self._pester(reader, writer)
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                self.open -= 1
                writer.close()
            self.closed_by_server += 1
            await asyncio.sleep(self.pause)

    async def _pester(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.drip is None:
            await reader.read(1)  # returns b"" when the server closes
            return
        writer.write(b"GET /dream-machine/v1/ping HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        line = 0
        while True:
            try:
                async with asyncio.timeout(self.drip):
                    if not await reader.read(1024):
                        return  # closed by the server
            except TimeoutError:
                pass
            line += 1
            writer.write(b"X-Drip-%d: still here\r\n" % line)
            await writer.drain()

    def wait_until_open(self, count: int, timeout: float = 30.0) -> float:
        """Wait until `count` connects have succeeded; return how long that took."""
        started = time.monotonic()
        while self.connects < count:
            assert time.monotonic() - started < timeout, f"only {self.connects} connected"
            time.sleep(0.05)
        return time.monotonic() - started

    def __enter__(self) -> Flood:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        while self._stop is None:
            time.sleep(0.01)
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()


def serve_command(*argv: str, soft_fds: int = 1024, hard_fds: int | None = None) -> Popen[str]:
    """`dreamnodes *argv` in a child process, stdout piped, with the file limits many machines
    start with (soft 1024; this test process has raised its own), or lower ones."""

    def limit_files() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        new_hard = hard if hard_fds is None else hard_fds
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft_fds, new_hard), new_hard))

    script = "import sys; from dreamnodes.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", script, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=limit_files,
    )


class Stderr:
    """Reads a child's stderr as it comes (a full pipe would freeze a server that logs)."""

    def __init__(self, proc: Popen[str]) -> None:
        assert proc.stderr is not None
        self._stream = proc.stderr
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line)

    def text(self) -> str:
        self._thread.join(15)
        return "".join(self.lines)


def stop_command(proc: Popen[str], stderr: Stderr) -> tuple[str, str]:
    """SIGTERM, wait, and return the rest of its stdout and its stderr."""
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out, stderr.text()


def time_requests(send: Callable[[int], None], count: int = 5, gap: float = 0.3) -> list[float]:
    """Call `send(n)` `count` times, `gap` seconds apart; return how long each took."""
    timings = []
    for n in range(count):
        started = time.monotonic()
        send(n)
        timings.append(round(time.monotonic() - started, 3))
        time.sleep(gap)
    return timings


def read_line(stream: IO[str] | None) -> str:
    assert stream is not None
    return stream.readline().strip()
