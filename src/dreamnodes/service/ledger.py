"""The service's own durable tables, beside the run log in the same store (SQLite or
PostgreSQL; the tables are the run log's migration 0003).

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
from dreamnodes.runlog.sqltext import sql
from dreamnodes.runlog.store import RunStore

__all__ = ["MARKER", "ServiceStore"]

MARKER = "service_request"  # the option naming which request a run belongs to

Started = Callable[[str, Mapping[str, Any] | None], None]


class ServiceStore(RunStore):
    """The run log with the service's tables and its run-started hook."""

    def __init__(self, path: str | None = None, *, secrets: Iterable[str] = ()) -> None:
        super().__init__(path, secrets=secrets)
        self._expected: dict[str, Started] = {}

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
        with self.read() as db:
            found = db.execute(
                sql("SELECT id FROM runs WHERE resume_key = :unit ORDER BY seq LIMIT 1"),
                {"unit": unit},
            ).scalar()
        return None if found is None else str(found)

    # -- idempotency keys --------------------------------------------------------------------

    def claim_key(self, key: str, kind: str, fingerprint: str) -> tuple[bool, str, str | None]:
        """(claimed by this call, the fingerprint on record, its target if it has one)."""
        with self.write() as db:
            new = db.execute(
                sql(
                    "INSERT INTO service_keys (key, kind, fingerprint, created_at)"
                    " VALUES (:key, :kind, :fingerprint, :now) ON CONFLICT (key) DO NOTHING"
                ),
                {"key": key, "kind": kind, "fingerprint": fingerprint, "now": time.time()},
            )
            if new.rowcount == 1:
                return True, fingerprint, None
            row = db.execute(
                sql("SELECT fingerprint, target FROM service_keys WHERE key = :key"),
                {"key": key},
            ).one()
        return False, str(row[0]), row[1]

    def key_target(self, key: str) -> str | None:
        with self.read() as db:
            target = db.execute(
                sql("SELECT target FROM service_keys WHERE key = :key"), {"key": key}
            ).scalar()
        return None if target is None else str(target)

    def set_key_target(self, key: str, target: str) -> None:
        with self.write() as db:
            db.execute(
                sql("UPDATE service_keys SET target = :target WHERE key = :key"),
                {"target": target, "key": key},
            )

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
        with self.write() as db:
            db.execute(
                sql(
                    "INSERT INTO service_batches (id, node, status, total, created_at,"
                    " finished_at, notify_url, items) VALUES (:id, :node, :status, :total,"
                    " :created_at, :finished_at, :notify_url, :items)"
                    " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
                    " finished_at = excluded.finished_at, items = excluded.items"
                ),
                {
                    "id": batch_id,
                    "node": node,
                    "status": status,
                    "total": len(items),
                    "created_at": now_iso(),
                    "finished_at": now_iso() if finished else None,
                    "notify_url": notify_url,
                    "items": text,
                },
            )

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        with self.read() as db:
            row = db.execute(
                sql(
                    "SELECT id, node, status, total, created_at, finished_at, notify_url, items"
                    " FROM service_batches WHERE id = :id"
                ),
                {"id": batch_id},
            ).first()
        if row is None:
            return None
        names = ("id", "node", "status", "total", "created_at", "finished_at", "notify_url")
        return {**dict(zip(names, row[:7], strict=True)), "items": json.loads(row[7])}

    def interrupt_batches(self) -> None:
        """Batches left running by a server that is gone: they ended `interrupted`."""
        with self.write() as db:
            db.execute(
                sql(
                    "UPDATE service_batches SET status = 'interrupted', finished_at = :now"
                    " WHERE status = 'running'"
                ),
                {"now": now_iso()},
            )

    # -- notifications -----------------------------------------------------------------------

    def add_notification(
        self, target: str, url: str, status: str, attempts: int, error: str | None
    ) -> None:
        with self.write() as db:
            db.execute(
                sql(
                    "INSERT INTO service_notifications (target, url, status, attempts,"
                    " last_error, at) VALUES (:target, :url, :status, :attempts, :last_error,"
                    " :at)"
                ),
                {
                    "target": target,
                    "url": url,
                    "status": status,
                    "attempts": attempts,
                    "last_error": None if error is None else self._text(error),
                    "at": now_iso(),
                },
            )

    def notifications(self, target: str) -> list[dict[str, Any]]:
        with self.read() as db:
            rows = db.execute(
                sql(
                    "SELECT url, status, attempts, last_error, at FROM service_notifications"
                    " WHERE target = :target ORDER BY seq"
                ),
                {"target": target},
            ).all()
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
        where = ["true"]
        args: dict[str, Any] = {"limit": limit}
        if before is not None:
            where.append("seq < (SELECT seq FROM runs WHERE id = :before)")
            args["before"] = before
        if status is not None:
            where.append("status = :status")
            args["status"] = "running" if status == "abandoned" else status
        if node is not None:
            where.append("node = :node")
            args["node"] = node
        statement = (
            f"SELECT id FROM runs WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT :limit"
        )
        with self.read() as db:
            found = db.execute(sql(statement), args).scalars().all()
        return [str(run_id) for run_id in found]
