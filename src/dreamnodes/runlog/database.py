"""Where a run log lives and how it is reached: an SQLite file (the default) or PostgreSQL.

`locate` reads what was given: a plain path (or ``sqlite:///PATH``) is an SQLite file; a
``postgresql://`` or ``postgresql+psycopg://`` URL is PostgreSQL through psycopg 3 (the
``[engine]`` extra). A URL's password is never shown: `Location.shown` masks it, and it is
taken out of every message made here.

`Database` is one store's SQLAlchemy engine and its transactions:
- SQLite: WAL journal, a busy timeout, pysqlite's own transaction handling turned off
  (SQLAlchemy's documented event hooks) so that a write transaction starts with
  ``BEGIN IMMEDIATE``: it takes the file's write lock up front and waits for it instead of
  failing later. One transaction at a time per process (a lock), many processes per file.
- PostgreSQL: a pool of connections, READ COMMITTED; what must be exclusive takes row locks
  (``SELECT ... FOR UPDATE``) or an advisory lock (migrations).
A forked child never reuses its parent's connections: the pool is replaced on a pid change.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from dreamnodes.errors import DreamError
from dreamnodes.redact import scrub_text

BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 10
_WRITE = "dreamnodes_write"  # the execution option that makes SQLite's BEGIN immediate
_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


@dataclass(frozen=True)
class Location:
    """A run log's address: what SQLAlchemy connects to, and what messages may show."""

    url: URL
    shown: str  # the path, or the URL with its password masked
    file: str | None  # the SQLite file to create owner-only (None: memory, or PostgreSQL)

    @property
    def dialect(self) -> str:
        """The database: "sqlite" or "postgresql"."""
        return self.url.get_backend_name()

    def scrub(self, message: str) -> str:
        """The message without the URL's password (as given, or percent-decoded)."""
        secret = self.url.password
        return scrub_text(_PASSWORD.sub(r"\1***@", message), [str(secret)] if secret else [])


def locate(given: str) -> Location:
    """Read a store's path or URL; an unknown scheme or driver is `invalid_input` on `store`."""
    if "://" not in given:
        memory = given == ":memory:"
        return Location(URL.create("sqlite", database=given), given, None if memory else given)
    shown = _PASSWORD.sub(r"\1***@", given)
    try:
        url = make_url(given)
    except (ArgumentError, ValueError):  # no scheme, a port that is not a number...
        raise _refused(shown, "is neither a file path nor a database URL") from None
    shown = url.render_as_string(hide_password=True)
    backend, _, driver = url.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        file = url.database or ":memory:"
        return Location(url, shown, None if file == ":memory:" else file)
    if backend in ("postgresql", "postgres"):
        if driver == "":
            url = url.set(drivername="postgresql+psycopg")
        elif driver != "psycopg":
            raise _refused(shown, f"names the driver {driver!r}: use postgresql+psycopg://")
        return Location(url, shown, None)
    raise _refused(shown, "is not a path, sqlite:///PATH or postgresql://USER@HOST/DATABASE")


@contextlib.contextmanager
def opening(location: Location) -> Iterator[None]:
    """The database's and the OS's errors while opening a store, as `invalid_input` on the
    field `store`, in the driver's words and without the URL's password."""
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        reason = getattr(exc, "orig", None) or exc  # the driver's words, not SQLAlchemy's
        message = location.scrub(f"cannot open the run store {location.shown}: {reason}")
        raise DreamError("invalid_input", message, field="store") from None


def _refused(shown: str, why: str) -> DreamError:
    return DreamError("invalid_input", f"the run store {shown} {why}", field="store")


class Database:
    """One store's engine; `transaction(write=...)` yields a Connection inside a transaction."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self.dialect = location.dialect
        if self.dialect == "sqlite":
            self._engine = _sqlite_engine(location)
            self._lock: threading.Lock | None = threading.Lock()
        else:
            self._engine = _postgres_engine(location)
            self._lock = None
        self._pid = os.getpid()
        self._closed = False

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]:
        """A transaction, committed when the block ends and rolled back if it raises."""
        if self._closed:
            raise ValueError(f"the run store {self.location.shown} is closed")
        self._after_fork()
        with self._lock or contextlib.nullcontext(), self._engine.connect() as db:
            if write:
                db.execution_options(**{_WRITE: True})
            with db.begin():
                yield db

    def close(self) -> None:
        self._closed = True
        self._engine.dispose()

    def _after_fork(self) -> None:
        # A forked child must not share its parent's connections (SQLite handles, sockets):
        # forget them without closing them, the parent still uses them.
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            if self._lock is not None:
                self._lock = threading.Lock()  # one held in the parent at fork stays held
            self._engine.dispose(close=False)


def _sqlite_engine(location: Location) -> Engine:
    memory = location.file is None
    engine = create_engine(
        location.url,
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        poolclass=StaticPool if memory else None,  # :memory: is one connection's database
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite emits no BEGIN of its own
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(db: Connection) -> None:
        # IMMEDIATE takes the write lock up front, so a busy file waits instead of failing.
        write = db.get_execution_options().get(_WRITE)
        db.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _postgres_engine(location: Location) -> Engine:
    args: dict[str, Any] = {}
    if "connect_timeout" not in location.url.query:
        args["connect_timeout"] = CONNECT_TIMEOUT_S
    try:
        return create_engine(location.url, connect_args=args, pool_pre_ping=True)
    except ModuleNotFoundError as exc:  # psycopg is the [engine] extra's
        raise DreamError(
            "invalid_input",
            f"the run store {location.shown} is PostgreSQL, which needs psycopg 3:"
            f" pip install 'dreamnodes[engine]' ({exc})",
            field="store",
        ) from None
