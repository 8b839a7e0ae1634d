"""The run log: every node execution recorded, secrets removed, in SQLite or PostgreSQL.

`RunStore(path_or_url)`: a path is an embedded SQLite file (the default, owner-only), a
``postgresql://`` URL a PostgreSQL database shared by many machines (see `database`). Either way
one `RunStore` may be shared by many threads and one store by many processes, in short
transactions; `write()` and `read()` hand out such a transaction for the tables beside the
runs (reservations, the service's). Nothing secret is written: every JSON part goes through
`scrub` first, and the serialised text is checked again. SQLAlchemy loads when a store opens.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from dreamnodes.runlog.schema import (
    SCHEMA_VERSION,
    create_private,
    current,
    default_store_path,
    upgrade,
)
from dreamnodes.runlog.sqltext import sql

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row

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


class RunStore:
    """The run log in an SQLite file or a PostgreSQL database; safe to share between threads
    and processes. `path` is what messages show: the file, or the URL with no password."""

    def __init__(self, path: str | None = None, *, secrets: Iterable[str] = ()) -> None:
        from dreamnodes.runlog.database import Database, locate, opening

        location = locate(path or default_store_path())
        self.path = location.shown
        env = (os.environ.get(name, "") for name in _SECRET_ENV_VARS)
        self._secrets = sorted(
            {s for s in secrets if s} | {s for s in env if len(s) >= _MIN_ENV_SECRET_LEN},
            key=len,
            reverse=True,
        )
        self.heartbeat = Heartbeat(self)
        with opening(location):
            if location.file is not None:
                create_private(Path(location.file))
            self._database = Database(location)
            try:
                upgrade(self._database)
            except BaseException:
                self._database.close()
                raise

    # -- transactions, for the tables beside the runs ----------------------------------------

    @property
    def revision(self) -> str | None:
        """The schema's Alembic revision (`schema.HEAD` once the store is open)."""
        return current(self._database)

    @property
    def dialect(self) -> str:
        """What SQL the store speaks: "sqlite" or "postgresql"."""
        return self._database.dialect

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: exclusive on SQLite (the file's write lock, taken up front);
        on PostgreSQL take row locks (``SELECT ... FOR UPDATE``) where it must be exclusive.
        Committed when the block ends, rolled back if it raises."""
        with self._database.transaction(write=True) as db:
            yield db

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction."""
        with self._database.transaction(write=False) as db:
            yield db

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
        with self.write() as db:
            db.execute(
                sql(
                    "INSERT INTO runs (id, node, provider, status, started_at, params, context,"
                    " options, resume_key, owner, lease_until) VALUES (:id, :node, :provider,"
                    " 'running', :started_at, :params, :context, :options, :resume_key,"
                    " :owner, :lease_until)"
                ),
                {
                    "id": run_id,
                    "node": node,
                    "provider": provider,
                    "started_at": now_iso(),
                    "params": self._json(params),
                    "context": None if context is None else self._json(context),
                    "options": self._json(options),
                    "resume_key": resume_key or f"run:{run_id}",
                    "owner": this_owner(),
                    "lease_until": time.time() + LEASE,
                },
            )
        self.heartbeat.start()
        return run_id

    def set_request(self, run_id: str, request: Mapping[str, Any]) -> None:
        self._update(run_id, "request = :request", request=self._json(request))

    def hold(self, run_id: str) -> None:
        """This process works on the run now (a step on a worker), whoever started it: the run
        is not `abandoned` while this process lives (its heartbeat renews the lease)."""
        me, until = this_owner(), time.time() + LEASE
        self._update(run_id, "owner = :me, lease_until = :until", me=me, until=until)
        self.heartbeat.start()

    def set_generation(self, run_id: str, generation_id: str) -> None:
        """Called as soon as a create is answered, so that a crashed loop can resume."""
        self._update(run_id, "generation_id = :generation_id", generation_id=generation_id)

    def add_attempts(self, run_id: str, attempts: Sequence[Attempt]) -> None:
        rows = [
            {
                "run_id": run_id,
                "number": a.number,
                "status": a.status,
                "seconds": a.seconds,
                "error": None if a.error is None else self._text(a.error),
            }
            for a in attempts
        ]
        with self.write() as db:
            self._require(db, run_id)
            if rows:
                db.execute(
                    sql(
                        "INSERT INTO attempts (run_id, number, status, seconds, error)"
                        " VALUES (:run_id, :number, :status, :seconds, :error)"
                    ),
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
            "status = :status, finished_at = :finished_at, output = :output, error = :error,"
            " owner = NULL, generation_id = COALESCE(generation_id, :generation_id)",
            status=status,
            finished_at=now_iso(),
            output=None if output is None else self._json(output),
            error=None if error is None else self._json(error),
            generation_id=generation_id,
        )

    # -- reading ---------------------------------------------------------------------------

    def get(self, run_id: str) -> RunRecord:
        with self.read() as db:
            row = db.execute(
                sql(f"SELECT {COLUMNS} FROM runs WHERE id = :id"), {"id": run_id}
            ).first()
            if row is None:
                raise self._not_found(run_id)
            return self._record(db, row)

    def list(
        self, *, limit: int = 50, status: str | None = None, node: str | None = None
    ) -> list[RunRecord]:
        """The most recent runs first, optionally only those with a status or of a node."""
        filters = {"status": status, "node": node}
        where = [f"{name} = :{name}" for name, value in filters.items() if value is not None]
        args: dict[str, Any] = {"limit": max(0, limit), **filters}
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self.read() as db:
            rows = db.execute(
                sql(f"SELECT {COLUMNS} FROM runs {clause} ORDER BY seq DESC LIMIT :limit"), args
            ).all()
            return [self._record(db, row) for row in rows]

    def close(self) -> None:
        self.heartbeat.stop()
        self._database.close()

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

    def _update(self, run_id: str, assignments: str, **values: Any) -> None:
        with self.write() as db:
            done = db.execute(
                sql(f"UPDATE runs SET {assignments} WHERE id = :run_id"),
                {**values, "run_id": run_id},
            )
            if done.rowcount == 0:
                raise self._not_found(run_id)

    def _require(self, db: Connection, run_id: str) -> None:
        found = db.execute(sql("SELECT 1 FROM runs WHERE id = :id"), {"id": run_id}).first()
        if found is None:
            raise self._not_found(run_id)

    def _not_found(self, run_id: str) -> DreamError:
        return DreamError("not_found", f"no run {run_id!r} in {self.path}", field="id")

    def _text(self, text: str) -> str:
        return scrub_text(text, self._secrets)

    def _json(self, value: Any) -> str:
        text = json.dumps(scrub(value, self._secrets), ensure_ascii=False, default=str)
        # Belt and braces: a secret hidden in something `default=str` rendered.
        return scrub_text(text, self._secrets)

    def _record(self, db: Connection, row: Row[Any]) -> RunRecord:
        attempts = [
            {"number": number, "status": status, "seconds": seconds, "error": error}
            for number, status, seconds, error in db.execute(
                sql(
                    "SELECT number, status, seconds, error FROM attempts WHERE run_id = :id"
                    " ORDER BY seq"
                ),
                {"id": row[0]},
            )
        ]
        return record_from_row(tuple(row), attempts)
