"""Where the run log lives, how it is created (owner-only), and how its schema is upgraded.

The schema is Alembic's (`migrations/`). Opening a store brings it to the head revision: a
quick read when it is there already; else, holding the write lock (SQLite: ``BEGIN
IMMEDIATE``; PostgreSQL: an advisory lock), the revision is read again and the missing
revisions run in that one transaction, so two processes opening a new store never both
migrate it. A SQLite file from before Alembic (schema version 1 or 2 in PRAGMA user_version,
no ``alembic_version`` table) is stamped at its revision and upgraded, nothing lost. A store
at a revision this dreamnodes does not know is refused. Alembic is imported only to migrate.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from dreamnodes.errors import DreamError
from dreamnodes.runlog.sqltext import sql

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from dreamnodes.runlog.database import Database

# The Alembic revisions (`migrations/versions/`), oldest first; a new one goes at the end.
# Revision i is also the SQLite file's schema version i (its PRAGMA user_version), as before.
REVISIONS = ("0001", "0002", "0003")
HEAD = REVISIONS[-1]
SCHEMA_VERSION = len(REVISIONS)

# Held (per transaction) by whoever upgrades a PostgreSQL store: one migration at a time.
_ADVISORY_LOCK = 0x646E_5F72_756E_6C6F  # "dn_runlo"
_SCRIPTS = "dreamnodes.runlog:migrations"


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


def upgrade(database: Database) -> str | None:
    """Bring the store to HEAD; returns the revision it was at (None: it was empty)."""
    with database.transaction(write=False) as db:
        stamped, version = _state(db, database.dialect)
    if stamped == HEAD and version in (None, SCHEMA_VERSION):
        return HEAD
    with database.transaction(write=True) as db:
        if database.dialect == "postgresql":
            db.execute(sql("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        stamped, version = _state(db, database.dialect)
        was = _revision(stamped, version, database.location.shown)
        if was != HEAD:
            _migrate(db, stamp=was if stamped is None else None)
        if version is not None:
            db.exec_driver_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return was


def current_revision(given: str | None) -> tuple[str, str | None]:
    """(where the store is, as shown; its revision) without creating or changing it."""
    from dreamnodes.runlog.database import Database, locate, opening

    location = locate(given or default_store_path())
    if location.file is not None and not Path(location.file).exists():
        return location.shown, None
    with opening(location):
        database = Database(location)
        try:
            return location.shown, current(database)
        finally:
            database.close()


def current(database: Database) -> str | None:
    """The revision the store is at, without changing it (None: an empty store)."""
    with database.transaction(write=False) as db:
        stamped, version = _state(db, database.dialect)
    return _revision(stamped, version, database.location.shown)


def _state(db: Connection, dialect: str) -> tuple[str | None, int | None]:
    """(the Alembic revision stamped, or None; SQLite's user_version, None elsewhere)."""
    from sqlalchemy import inspect

    version = None
    if dialect == "sqlite":
        version = int(db.exec_driver_sql("PRAGMA user_version").scalar_one())
    if not inspect(db).has_table("alembic_version"):
        return None, version
    stamped = db.execute(sql("SELECT version_num FROM alembic_version")).scalar()
    return (None if stamped is None else str(stamped)), version


def _revision(stamped: str | None, version: int | None, shown: str) -> str | None:
    """The revision a store is at: Alembic's stamp, else a pre-Alembic file's user_version."""
    version = version or 0
    if (stamped is not None and stamped not in REVISIONS) or version > SCHEMA_VERSION:
        raise DreamError(
            "invalid_input",
            f"the run store {shown} has schema revision {stamped or version}, newer than"
            f" this dreamnodes knows ({HEAD}); upgrade dreamnodes",
            field="store",
        )
    if stamped is not None:
        return stamped
    return REVISIONS[version - 1] if version else None


def _migrate(db: Connection, *, stamp: str | None) -> None:
    """Run the missing revisions on this connection, inside its transaction."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _SCRIPTS)
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = db
    if stamp is not None:  # a file from before Alembic: its tables are there already
        command.stamp(config, stamp)
    command.upgrade(config, "head")
