"""Keeping this process's leases alive in the run log while it works.

A daemon thread renews, every third of a lease, the lease of every running run and every
reserved unit of work this process owns. It stops with the store, and dies with the process:
then the leases run out and other hosts take the work over (this host sees the death at once).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from dreamnodes.runlog.owner import LEASE, this_owner
from dreamnodes.runlog.sqltext import sql

if TYPE_CHECKING:
    from dreamnodes.runlog.store import RunStore


class Heartbeat:
    """Renews one store's leases of this process; `start` is idempotent and cheap."""

    def __init__(self, store: RunStore, every: float = LEASE / 3) -> None:
        self._store = store
        self._every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._guard:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="dreamnodes-heartbeat", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def beat(self) -> None:
        """Renew now: runs and units of this process get a lease of LEASE seconds from now."""
        me = this_owner()
        until = time.time() + LEASE
        with self._store.write() as db:
            db.execute(
                sql(
                    "UPDATE runs SET lease_until = :until"
                    " WHERE owner = :owner AND status = 'running'"
                ),
                {"until": until, "owner": me},
            )
            db.execute(
                sql(
                    "UPDATE units SET lease_until = :until WHERE owner IS NOT NULL"
                    " AND substr(owner, 1, :length) = :prefix"
                ),
                {"until": until, "length": len(me) + 1, "prefix": me + "/"},
            )

    def _run(self) -> None:
        from sqlalchemy.exc import SQLAlchemyError  # loaded already: the store is open

        while not self._stop.wait(self._every):
            try:
                self.beat()
            except (SQLAlchemyError, ValueError):  # closed or busy: the next beat tries again
                continue
