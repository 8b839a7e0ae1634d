"""The run log: every node execution recorded in an embedded SQLite file, secrets removed.

One `RunStore` may be shared by many threads (one connection behind a lock, short
transactions) and one file by many processes (WAL journal, a busy timeout). Nothing secret is
written: every JSON part goes through `scrub` first, and the serialised text is checked again.
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dreamnodes.errors import Attempt, DreamError
from dreamnodes.redact import REDACTED, scrub, scrub_text
from dreamnodes.runlog.heartbeat import Heartbeat
from dreamnodes.runlog.owner import LEASE, this_owner
from dreamnodes.runlog.records import (
    COLUMNS,
    RunRecord,
    generation_of,
    new_run_id,
    now_iso,
    record_from_row,
    resume_key,
)
from dreamnodes.runlog.schema import SCHEMA_VERSION, create_private, default_store_path, migrate

__all__ = [
    "REDACTED",
    "SCHEMA_VERSION",
    "STATUSES",
    "RunRecord",
    "RunStore",
    "default_store_path",
    "new_run_id",
    "resume_key",
    "scrub",
]

STATUSES = ("running", "succeeded", "failed", "interrupted")

# Key values found in the environment are scrubbed too, unless too short to be a real key
# (replacing a one-letter "key" everywhere would wreck the record, not protect it).
_SECRET_ENV_VARS = ("LUMA_API_KEY", "PIXAZO_API_KEY")
_MIN_ENV_SECRET_LEN = 8

_BUSY_TIMEOUT_MS = 30_000


class RunStore:
    """The run log in one SQLite file; safe to share between threads and processes."""

    def __init__(self, path: str | None = None, *, secrets: Iterable[str] = ()) -> None:
        self.path = path or default_store_path()
        env = (os.environ.get(name, "") for name in _SECRET_ENV_VARS)
        self._secrets = sorted(
            {s for s in secrets if s} | {s for s in env if len(s) >= _MIN_ENV_SECRET_LEN},
            key=len,
            reverse=True,
        )
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.heartbeat = Heartbeat(self)
        try:
            if self.path != ":memory:":
                create_private(Path(self.path))
            self._db = self._connect()
            with self._write() as db:
                migrate(db, self.path)
        except (sqlite3.Error, OSError) as exc:
            raise DreamError(
                "invalid_input", f"cannot open the run store {self.path}: {exc}", field="store"
            ) from exc

    # -- writing ---------------------------------------------------------------------------

    def start(
        self,
        *,
        node: str,
        provider: str,
        params: Mapping[str, Any],
        context: Mapping[str, Any] | None,
        options: Mapping[str, Any],
        resume_key: str | None = None,
    ) -> str:
        """Record a run that is starting; returns its id (sortable by start time).

        The run is owned by this process (see `dreamnodes.runlog.owner`): if the process dies,
        the run is seen as abandoned at once on this host, and when its lease ends elsewhere.
        """
        run_id = new_run_id()
        with self._write() as db:
            db.execute(
                "INSERT INTO runs (id, node, provider, status, started_at, params, context,"
                " options, resume_key, owner, lease_until)"
                " VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    node,
                    provider,
                    now_iso(),
                    self._json(params),
                    None if context is None else self._json(context),
                    self._json(options),
                    resume_key or f"run:{run_id}",
                    this_owner(),
                    time.time() + LEASE,
                ),
            )
        self.heartbeat.start()
        return run_id

    def set_request(self, run_id: str, request: Mapping[str, Any]) -> None:
        self._update(run_id, "request = ?", (self._json(request),))

    def set_generation(self, run_id: str, generation_id: str) -> None:
        """Called as soon as a create is answered, so that a crashed loop can resume."""
        self._update(run_id, "generation_id = ?", (generation_id,))

    def add_attempts(self, run_id: str, attempts: Sequence[Attempt]) -> None:
        rows = [
            (
                run_id,
                a.number,
                a.status,
                a.seconds,
                None if a.error is None else self._text(a.error),
            )
            for a in attempts
        ]
        with self._write() as db:
            self._require(db, run_id)
            db.executemany(
                "INSERT INTO attempts (run_id, number, status, seconds, error)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def finish(
        self,
        run_id: str,
        *,
        output: Mapping[str, Any] | None = None,
        error: Mapping[str, Any] | None = None,
        status: str | None = None,
    ) -> None:
        """Close a run: failed if an error is given, succeeded otherwise (or `status`)."""
        status = status or ("failed" if error is not None else "succeeded")
        generation_id = generation_of(output) or generation_of(error)
        self._update(
            run_id,
            "status = ?, finished_at = ?, output = ?, error = ?, owner = NULL,"
            " generation_id = COALESCE(generation_id, ?)",
            (
                status,
                now_iso(),
                None if output is None else self._json(output),
                None if error is None else self._json(error),
                generation_id,
            ),
        )

    # -- reading ---------------------------------------------------------------------------

    def get(self, run_id: str) -> RunRecord:
        with self._read() as db:
            row = db.execute(f"SELECT {COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise self._not_found(run_id)
            return self._record(db, row)

    def list(
        self, *, limit: int = 50, status: str | None = None, node: str | None = None
    ) -> list[RunRecord]:
        """The most recent runs first, optionally only those with a status or of a node."""
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if node is not None:
            where.append("node = ?")
            args.append(node)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._read() as db:
            rows = db.execute(
                f"SELECT {COLUMNS} FROM runs {clause} ORDER BY seq DESC LIMIT ?",
                (*args, max(0, limit)),
            ).fetchall()
            return [self._record(db, row) for row in rows]

    def close(self) -> None:
        self.heartbeat.stop()
        with self._lock:
            self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({self.path!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        """The keys this log scrubs (given, and those found in the environment)."""
        return tuple(self._secrets)

    # -- internals -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    def _connection(self) -> sqlite3.Connection:
        # A forked child must not share its parent's SQLite handle.
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._db = self._connect()
        return self._db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._connection()
            # IMMEDIATE takes the write lock up front, so a busy file waits instead of failing.
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._connection()
            db.execute("BEGIN")
            try:
                yield db
            finally:
                db.execute("COMMIT")

    def _update(self, run_id: str, assignments: str, args: tuple[Any, ...]) -> None:
        with self._write() as db:
            cursor = db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*args, run_id))
            if cursor.rowcount == 0:
                raise self._not_found(run_id)

    def _require(self, db: sqlite3.Connection, run_id: str) -> None:
        if db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise self._not_found(run_id)

    def _not_found(self, run_id: str) -> DreamError:
        return DreamError("not_found", f"no run {run_id!r} in {self.path}", field="id")

    def _text(self, text: str) -> str:
        return scrub_text(text, self._secrets)

    def _json(self, value: Any) -> str:
        text = json.dumps(scrub(value, self._secrets), ensure_ascii=False, default=str)
        # Belt and braces: a secret hidden in something `default=str` rendered.
        return scrub_text(text, self._secrets)

    def _record(self, db: sqlite3.Connection, row: tuple[Any, ...]) -> RunRecord:
        attempts = [
            {"number": number, "status": status, "seconds": seconds, "error": error}
            for number, status, seconds, error in db.execute(
                "SELECT number, status, seconds, error FROM attempts WHERE run_id = ? ORDER BY seq",
                (row[0],),
            )
        ]
        return record_from_row(row, attempts)
