"""Fixtures for the command-line tests: a local API stand-in that counts what reaches it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fakeserver import DROP, Drop, FakeServer, Request, Response, json_response

KEY = "secret-key-123456789"
GEN_ID = "7ca76429-99d1-46ab-bb2e-84baa4acdb04"
GENERATION: dict[str, Any] = {
    "id": GEN_ID,
    "state": "queued",
    "generation_type": "video",
    "model": "ray-2",
    "created_at": "2025-01-01T00:00:00.000Z",
    "failure_reason": None,
    "assets": {"video": None, "image": None, "progress_video": None},
    "request": {"generation_type": "video", "model": "ray-2", "prompt": "a fox"},
}

Answer = Callable[[Request, int], Response | Drop]


@dataclass
class CountingServer:
    """A loopback HTTP server answering with `answer(request, number)`; it keeps every request."""

    answer: Answer
    requests: list[Request] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle(self, req: Request) -> Response | Drop:
        with self._lock:
            self.requests.append(req)
            self.times.append(time.monotonic())
            number = len(self.requests)
        return self.answer(req, number)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)


def status(code: int, headers: dict[str, str] | None = None) -> Answer:
    """Always answer `code` with a Luma-style detail body."""
    body = json.dumps({"detail": f"stand-in says {code}"}).encode()
    return lambda req, n: json_response(code, body, headers)


def created(req: Request, n: int) -> Response:
    return json_response(201, json.dumps(GENERATION).encode())


def dropped(req: Request, n: int) -> Drop:
    return DROP


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], CountingServer]]:
    """`serve(answer)` starts a counting server on 127.0.0.1; all are stopped afterwards."""
    running: list[FakeServer] = []

    def start(answer: Answer) -> CountingServer:
        counting = CountingServer(answer)
        server = FakeServer(counting.handle)
        counting.url = server.start() + "/dream-machine/v1"
        running.append(server)
        return counting

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A known API key and a run log in tmp_path (never the user's)."""
    monkeypatch.setenv("LUMA_API_KEY", KEY)
    monkeypatch.setenv("DREAMNODES_STORE", str(tmp_path / "runs.sqlite3"))
