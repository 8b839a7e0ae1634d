"""The run log's backends: a test that takes `store_url` runs on an SQLite file and on a
PostgreSQL database of its own (skipped, saying why, where PostgreSQL is not installed)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.sqlite3")
    url: str = request.getfixturevalue("postgres_database")
    return url
