"""Shared by every test directory: this file's folder is on sys.path, so `fakeserver` (the
one fake HTTP server of the tests) imports from anywhere under tests/."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fakeserver import FakeServer, Handler


@pytest.fixture
def fake_server() -> Iterator[Callable[[Handler], FakeServer]]:
    """`fake_server(handler)` starts a FakeServer; every one is stopped after the test."""
    started: list[FakeServer] = []

    def start(handler: Handler) -> FakeServer:
        server = FakeServer(handler)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
