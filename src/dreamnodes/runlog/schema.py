"""Where the run log lives, how it is created (owner-only), and its migrations."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from dreamnodes.errors import DreamError

# Each entry takes the schema from version i to i + 1; never edit one, append a new one.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS runs (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        node TEXT NOT NULL,
        provider TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        params TEXT NOT NULL,
        context TEXT,
        request TEXT,
        output TEXT,
        error TEXT,
        generation_id TEXT,
        resume_key TEXT,
        options TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS attempts (
        seq INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        number INTEGER NOT NULL,
        status INTEGER,
        seconds REAL NOT NULL,
        error TEXT
    );
    CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, seq);
    CREATE INDEX IF NOT EXISTS runs_by_node ON runs(node, seq);
    CREATE INDEX IF NOT EXISTS runs_by_resume_key ON runs(resume_key, seq)
        WHERE resume_key IS NOT NULL;
    CREATE INDEX IF NOT EXISTS attempts_by_run ON attempts(run_id, seq);
    """,
    # Exactly once: units of work (reserved by an owner with a lease) and the generations
    # each one claimed. Every earlier run becomes a unit; one that may have sent a create and
    # recorded no generation keeps `sent_at`, so its lost create is looked for, never resent.
    """
    ALTER TABLE runs ADD COLUMN owner TEXT;
    ALTER TABLE runs ADD COLUMN lease_until REAL;
    UPDATE runs SET resume_key = 'run:' || id WHERE resume_key IS NULL;
    CREATE TABLE IF NOT EXISTS units (
        key TEXT PRIMARY KEY,
        owner TEXT,
        lease_until REAL,
        run_id TEXT,
        reserved_at REAL NOT NULL,
        sent_at REAL,
        generation_id TEXT
    );
    CREATE TABLE IF NOT EXISTS claims (
        generation_id TEXT PRIMARY KEY,
        unit TEXT NOT NULL,
        claimed_at REAL NOT NULL
    );
    INSERT OR IGNORE INTO units (key, reserved_at, sent_at, generation_id)
        SELECT resume_key,
               (julianday(MIN(started_at)) - 2440587.5) * 86400.0,
               CASE WHEN COUNT(generation_id) = 0
                    THEN (julianday(MIN(started_at)) - 2440587.5) * 86400.0 END,
               MAX(generation_id)
        FROM runs GROUP BY resume_key;
    INSERT OR IGNORE INTO claims (generation_id, unit, claimed_at)
        SELECT generation_id, resume_key, 0 FROM runs WHERE generation_id IS NOT NULL;
    CREATE INDEX IF NOT EXISTS units_by_owner ON units(owner) WHERE owner IS NOT NULL;
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


def default_store_path() -> str:
    """$DREAMNODES_STORE if set, else runs.sqlite3 in the user's data directory."""
    explicit = os.environ.get("DREAMNODES_STORE")
    if explicit:
        return explicit
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    elif os.environ.get("XDG_DATA_HOME"):
        base = Path(os.environ["XDG_DATA_HOME"])
    else:
        base = Path.home() / ".local" / "share"
    return str(base / "dreamnodes" / "runs.sqlite3")


def create_private(path: Path) -> None:
    """The run log holds callback tokens and prompts: readable by its owner only.

    A folder we create is 0700; the file is created 0600 (SQLite gives its -wal and -shm files
    the database file's mode) and an existing one of ours is narrowed to 0600.
    """
    folder = path.parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        info = os.fstat(fd)
        if info.st_mode & 0o077 and info.st_uid == getattr(os, "getuid", lambda: -1)():
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def migrate(db: sqlite3.Connection, path: str) -> None:
    """Bring the file's schema up to SCHEMA_VERSION (inside the caller's write transaction)."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise DreamError(
            "invalid_input",
            f"the run store {path} has schema version {version}, newer than this"
            f" dreamnodes knows ({SCHEMA_VERSION}); upgrade dreamnodes",
            field="store",
        )
    for step in _MIGRATIONS[version:]:
        for statement in step.split(";"):
            if statement.strip():
                db.execute(statement)
    if version < SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
