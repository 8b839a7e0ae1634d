"""The run log's backends: a test that takes `store_url` runs on an SQLite file and on a
PostgreSQL database of its own (skipped, saying why, where PostgreSQL is not installed)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.sqlite3")
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def dead_owner() -> str:
    """The owner name of a process of this host that has exited (its unit's token "x")."""
    pid = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"{socket.gethostname()}:{pid}:-/x"
