"""The service's own durable tables, beside the run log in the same SQLite file.

`ServiceStore` is the run log (`RunStore`) plus:
- `service_keys`: an `Idempotency-Key` → the run or batch it made, with a fingerprint of the
  request so that a key reused for another request is refused;
- `service_batches`: a batch's items, their run ids and results (written as they come);
- `service_notifications`: each delivery to a `notify_url`, its attempts and outcome;
and a hook that tells the service the id of a run the moment `run_recorded` starts it (the
run's options carry a marker), so a 202 can name the run before its create is sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dreamnodes.runlog.records import now_iso
from dreamnodes.runlog.store import RunStore

__all__ = ["MARKER", "ServiceStore"]

MARKER = "service_request"  # the option naming which request a run belongs to

_TABLES = """
CREATE TABLE IF NOT EXISTS service_keys (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, fingerprint TEXT NOT NULL, target TEXT,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS service_batches (
    id TEXT PRIMARY KEY, node TEXT NOT NULL, status TEXT NOT NULL, total INTEGER NOT NULL,
    created_at TEXT NOT NULL, finished_at TEXT, notify_url TEXT, items TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS service_notifications (
    seq INTEGER PRIMARY KEY, target TEXT NOT NULL, url TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL, last_error TEXT, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS service_notifications_by_target ON service_notifications(target);
"""

Started = Callable[[str, Mapping[str, Any] | None], None]


class ServiceStore(RunStore):
    """The run log with the service's tables and its run-started hook."""

    def __init__(self, path: str | None = None, *, secrets: Iterable[str] = ()) -> None:
        super().__init__(path, secrets=secrets)
        self._expected: dict[str, Started] = {}
        with self._lock:
            self._connection().executescript(_TABLES)

    # -- the run-started hook ----------------------------------------------------------------

    def expect(self, marker: str, started: Started) -> None:
        """Call `started(run_id, context)` for each run started with this marker."""
        self._expected[marker] = started

    def forget(self, marker: str) -> None:
        self._expected.pop(marker, None)

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
        run_id = super().start(
            node=node,
            provider=provider,
            params=params,
            context=context,
            options=options,
            resume_key=resume_key,
        )
        started = self._expected.get(str(options.get(MARKER)))
        if started is not None:
            started(run_id, context)
        return run_id

    def run_with_unit(self, unit: str) -> str | None:
        """The first run that did this unit of work (an idempotency key's), if any."""
        with self._read() as db:
            row = db.execute(
                "SELECT id FROM runs WHERE resume_key = ? ORDER BY seq LIMIT 1", (unit,)
            ).fetchone()
        return None if row is None else str(row[0])

    # -- idempotency keys --------------------------------------------------------------------

    def claim_key(self, key: str, kind: str, fingerprint: str) -> tuple[bool, str, str | None]:
        """(claimed by this call, the fingerprint on record, its target if it has one)."""
        with self._write() as db:
            row = db.execute(
                "SELECT fingerprint, target FROM service_keys WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                return False, str(row[0]), row[1]
            db.execute(
                "INSERT INTO service_keys (key, kind, fingerprint, created_at) VALUES (?, ?, ?, ?)",
                (key, kind, fingerprint, time.time()),
            )
        return True, fingerprint, None

    def key_target(self, key: str) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT target FROM service_keys WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_key_target(self, key: str, target: str) -> None:
        with self._write() as db:
            db.execute("UPDATE service_keys SET target = ? WHERE key = ?", (target, key))

    # -- batches -----------------------------------------------------------------------------

    def save_batch(
        self,
        batch_id: str,
        *,
        node: str,
        status: str,
        items: list[dict[str, Any]],
        notify_url: str | None = None,
        finished: bool = False,
    ) -> None:
        text = self._json(items)
        with self._write() as db:
            db.execute(
                "INSERT INTO service_batches (id, node, status, total, created_at, finished_at,"
                " notify_url, items) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET status = excluded.status,"
                " finished_at = excluded.finished_at, items = excluded.items",
                (
                    batch_id,
                    node,
                    status,
                    len(items),
                    now_iso(),
                    now_iso() if finished else None,
                    notify_url,
                    text,
                ),
            )

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        with self._read() as db:
            row = db.execute(
                "SELECT id, node, status, total, created_at, finished_at, notify_url, items"
                " FROM service_batches WHERE id = ?",
                (batch_id,),
            ).fetchone()
        if row is None:
            return None
        names = ("id", "node", "status", "total", "created_at", "finished_at", "notify_url")
        return {**dict(zip(names, row[:7], strict=True)), "items": json.loads(row[7])}

    def interrupt_batches(self) -> None:
        """Batches left running by a server that is gone: they ended `interrupted`."""
        with self._write() as db:
            db.execute(
                "UPDATE service_batches SET status = 'interrupted', finished_at = ?"
                " WHERE status = 'running'",
                (now_iso(),),
            )

    # -- notifications -----------------------------------------------------------------------

    def add_notification(
        self, target: str, url: str, status: str, attempts: int, error: str | None
    ) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO service_notifications (target, url, status, attempts, last_error,"
                " at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    target,
                    url,
                    status,
                    attempts,
                    None if error is None else self._text(error),
                    now_iso(),
                ),
            )

    def notifications(self, target: str) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT url, status, attempts, last_error, at FROM service_notifications"
                " WHERE target = ? ORDER BY seq",
                (target,),
            ).fetchall()
        names = ("url", "status", "attempts", "last_error", "at")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def run_ids(
        self,
        *,
        status: str | None = None,
        node: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[str]:
        """Run ids newest first, after the `before` cursor (a run id), filtered."""
        where = ["(? IS NULL OR seq < (SELECT seq FROM runs WHERE id = ?))"]
        args: list[Any] = [before, before]
        if status is not None:
            where.append("status = ?")
            args.append("running" if status == "abandoned" else status)
        if node is not None:
            where.append("node = ?")
            args.append(node)
        with self._read() as db:
            rows = db.execute(
                f"SELECT id FROM runs WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [str(row[0]) for row in rows]
