"""Exactly once: the durable reservations of units of work, and the generations they claim.

A unit of work (a run, a loop item, a retry) has a key. Before a create is sent, the key is
reserved in the run log in one transaction, naming its owner (this process and task, with a
lease). A live owner's reservation makes others wait for its result; a dead owner's is taken
over at once. `sending` is written before a create leaves this machine, `created` when its
answer names the generation: a unit with `sent_at` and no generation has an unknown outcome,
and its generation is looked for before anything is sent again. Every generation is claimed
by one unit only (a primary key), so none is ever handed to two units, across processes.

Each step is one transaction of the store (`RunStore.write`). On SQLite that transaction holds
the file's write lock; on PostgreSQL a unit is inserted if missing (``ON CONFLICT DO NOTHING``)
and then locked (``SELECT ... FOR UPDATE``) before it is looked at, so two machines reserving
one unit at once are served one after the other.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dreamnodes.errors import DreamError
from dreamnodes.runlog.owner import LEASE, alive, this_owner
from dreamnodes.runlog.sqltext import sql

if TYPE_CHECKING:
    from dreamnodes.runlog.store import RunStore

# How often a unit held by another live owner is looked at again.
HELD_POLL = 0.25
_live_tokens: set[str] = set()  # the units this process's tasks hold right now


@dataclass(frozen=True)
class Unit:
    """A reserved unit of work, as the store knew it when we took it."""

    key: str
    reserved_at: float  # wall clock, when it was first reserved
    sent_at: float | None  # the earliest create that may have left for it
    generation_id: str | None  # the generation it made, when known
    token: str  # this holder's token (our owner name ends with it)


@dataclass(frozen=True)
class Held:
    """Another live owner holds the unit: wait for it, never send beside it."""

    owner: str
    run_id: str | None


class Reservations:
    """The units and claims of one run log (`RunStore`)."""

    def __init__(self, store: RunStore) -> None:
        self._store = store
        # SQLite's write transaction is exclusive already; PostgreSQL locks the row it reads.
        self._exclusive = " FOR UPDATE" if store.dialect == "postgresql" else ""

    def try_reserve(self, key: str, run_id: str) -> Unit | Held:
        """Reserve `key` for this task, or say who holds it. One transaction."""
        token = secrets.token_hex(8)
        me = f"{this_owner()}/{token}"
        now = time.time()
        mine = {"key": key, "owner": me, "lease_until": now + LEASE, "run_id": run_id}
        with self._store.write() as db:
            new = db.execute(
                sql(
                    "INSERT INTO units (key, owner, lease_until, run_id, reserved_at)"
                    " VALUES (:key, :owner, :lease_until, :run_id, :now)"
                    " ON CONFLICT (key) DO NOTHING"
                ),
                {**mine, "now": now},
            )
            if new.rowcount == 1:
                unit = Unit(key, now, None, None, token)
            else:
                row = db.execute(
                    sql(
                        "SELECT owner, lease_until, run_id, reserved_at, sent_at, generation_id"
                        f" FROM units WHERE key = :key{self._exclusive}"
                    ),
                    {"key": key},
                ).one()
                owner, lease_until, holder, reserved_at, sent_at, generation_id = row
                if owner is not None and _holds(owner, lease_until, now):
                    return Held(str(owner), holder)
                db.execute(
                    sql(
                        "UPDATE units SET owner = :owner, lease_until = :lease_until,"
                        " run_id = :run_id WHERE key = :key"
                    ),
                    mine,
                )
                unit = Unit(key, float(reserved_at), sent_at, generation_id, token)
        _live_tokens.add(token)
        self._store.heartbeat.start()
        return unit

    async def reserve(self, key: str, run_id: str, *, patience: float | None = None) -> Unit:
        """Reserve `key`, waiting while another live owner holds it (up to `patience` s)."""
        started = time.monotonic()
        while True:
            got = self.try_reserve(key, run_id)
            if isinstance(got, Unit):
                return got
            if patience is not None and time.monotonic() - started > patience:
                raise DreamError(
                    "unknown_outcome",
                    f"this unit of work is still being done by run {got.run_id} (process"
                    f" {got.owner.split('/')[0]}); nothing was sent. See `dreamnodes runs show"
                    f" {got.run_id}`",
                    retryable=True,
                )
            await asyncio.sleep(HELD_POLL)

    def sending(self, unit: Unit) -> None:
        """A create for this unit is about to leave: written before it does."""
        self._set(unit, "sent_at = COALESCE(sent_at, :now)", now=time.time())

    def not_accepted(self, unit: Unit) -> None:
        """The service answered and refused: nothing of this unit's sends is outstanding."""
        self._set(unit, "sent_at = NULL")

    def claim(self, unit: Unit, generation_id: str) -> bool:
        """Claim a generation for this unit; False if another unit has it already."""
        with self._store.write() as db:
            db.execute(
                sql(
                    "INSERT INTO claims (generation_id, unit, claimed_at)"
                    " VALUES (:generation_id, :unit, :now) ON CONFLICT (generation_id) DO NOTHING"
                ),
                {"generation_id": generation_id, "unit": unit.key, "now": time.time()},
            )
            holder = db.execute(
                sql("SELECT unit FROM claims WHERE generation_id = :generation_id"),
                {"generation_id": generation_id},
            ).scalar()
        return holder == unit.key

    def created(self, unit: Unit, generation_id: str) -> bool:
        """Record the unit's generation (claiming it); False if another unit claimed it."""
        if not self.claim(unit, generation_id):
            return False
        self._set(unit, "generation_id = :generation_id", generation_id=generation_id)
        return True

    def release(self, unit: Unit) -> None:
        """This task stops working on the unit: anyone may take it over (what it made stays)."""
        _live_tokens.discard(unit.token)
        self._set(unit, "owner = NULL, lease_until = NULL")

    @contextmanager
    def held(self, unit: Unit) -> Iterator[Unit]:
        try:
            yield unit
        finally:
            self.release(unit)

    def _set(self, unit: Unit, assignments: str, **values: object) -> None:
        with self._store.write() as db:
            db.execute(
                sql(f"UPDATE units SET {assignments} WHERE key = :key"), {**values, "key": unit.key}
            )


def _holds(owner: str, lease_until: float | None, now: float) -> bool:
    """Whether `owner` (``process/token``) still holds its unit."""
    process, _, token = owner.rpartition("/")
    if process == this_owner():
        return token in _live_tokens
    return alive(process, lease_until, now)
