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


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL for the session (`servers.start_postgres`): its superuser's URL."""
    import shutil
    import tempfile

    from servers import start_postgres

    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[engine]')")
    tmp = tempfile.mkdtemp(prefix="dreamnodes-pg-")  # in /tmp: reachable by `postgres`
    try:
        url, stop = start_postgres(tmp)
    except FileNotFoundError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"PostgreSQL tests skip: {exc}")
    try:
        yield url
    finally:
        stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A new, empty database for one test: its URL (dropped after the test)."""
    import secrets

    import psycopg

    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
