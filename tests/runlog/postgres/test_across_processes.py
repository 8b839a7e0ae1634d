"""Exactly once on PostgreSQL, with real processes: two racing for the same units each win a
disjoint share, a generation goes to one unit only, a killed owner's unit is taken over, and
the heartbeat renews this process's leases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dreamnodes.runlog.reservations import Reservations, Unit
from dreamnodes.runlog.sqltext import sql
from dreamnodes.runlog.store import RunStore

UNITS = 150

RACE = """
import json, sys, time
from pathlib import Path
from dreamnodes.runlog.reservations import Reservations, Unit
from dreamnodes.runlog.store import RunStore
url, go, me, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
store = RunStore(url)
book = Reservations(store)
while not go.exists():
    time.sleep(0.002)
taken = [k for k in (f"dead-{i}" for i in range(count))
         if isinstance(book.try_reserve(k, f"r_{me}"), Unit)]
won = [k for k in (f"item-{i}" for i in range(count))
       if isinstance(book.try_reserve(k, f"r_{me}"), Unit)]
claimed = []
for i in range(count):  # each process's own units race for the same generations
    unit = book.try_reserve(f"{me}-{i}", f"r_{me}")
    assert isinstance(unit, Unit)
    if book.created(unit, f"gen-{i}"):
        claimed.append(f"gen-{i}")
print(json.dumps({"won": won, "taken": taken, "claimed": claimed}), flush=True)
while not Path(str(go) + ".end").exists():  # alive, holding its units, till both are done
    time.sleep(0.01)
"""


@pytest.fixture
def url(postgres_database: str) -> str:
    return postgres_database


def test_two_processes_racing_for_the_same_units_never_share_one(
    url: str, tmp_path: Path, dead_owner: str
) -> None:
    with RunStore(url) as store, store.write() as db:  # units a dead process left reserved
        db.execute(
            sql(
                "INSERT INTO units (key, owner, lease_until, reserved_at)"
                " VALUES (:key, :owner, 1e12, 0)"
            ),
            [{"key": f"dead-{i}", "owner": dead_owner} for i in range(UNITS)],
        )
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, url, str(go), name, str(UNITS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    time.sleep(1.0)
    go.touch()
    lines = [p.stdout.readline() if p.stdout else "" for p in procs]
    (tmp_path / "go.end").touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    a, b = (json.loads(line) for line in lines)
    everything = {f"item-{i}" for i in range(UNITS)}
    assert set(a["won"]).isdisjoint(b["won"])
    assert set(a["won"]) | set(b["won"]) == everything
    # A dead owner's unit is taken over by one of them only (the row is locked while read).
    assert set(a["taken"]).isdisjoint(b["taken"]), set(a["taken"]) & set(b["taken"])
    assert set(a["taken"]) | set(b["taken"]) == {f"dead-{i}" for i in range(UNITS)}
    generations = {f"gen-{i}" for i in range(UNITS)}
    assert set(a["claimed"]).isdisjoint(b["claimed"])
    assert set(a["claimed"]) | set(b["claimed"]) == generations
    with RunStore(url) as store, store.read() as db:
        claims = {g: u for g, u in db.execute(sql("SELECT generation_id, unit FROM claims"))}
        units = {
            key: generation
            for key, generation in db.execute(
                sql("SELECT key, generation_id FROM units WHERE generation_id IS NOT NULL")
            )
        }
    assert len(claims) == UNITS
    # Each generation is claimed by the unit that recorded it, and by no other.
    assert {generation: unit for unit, generation in units.items()} == claims


HOLDER = """
import sys, time
from dreamnodes.runlog.reservations import Reservations
from dreamnodes.runlog.store import RunStore
store = RunStore(sys.argv[1])
book = Reservations(store)
unit = book.try_reserve("item-1", "r_holder")
book.sending(unit)
print("held", flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder(url: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_a_killed_owners_unit_is_taken_over(url: str, holder: subprocess.Popen[str]) -> None:
    with RunStore(url) as store:
        book = Reservations(store)
        assert not isinstance(book.try_reserve("item-1", "r_next"), Unit)  # alive: held
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        unit = book.try_reserve("item-1", "r_next")
        assert isinstance(unit, Unit)
        # What the dead owner did stays: it may have sent a create, so that is looked for.
        assert unit.sent_at is not None and unit.generation_id is None


def test_the_heartbeat_renews_this_processs_leases(url: str) -> None:
    with RunStore(url) as store:
        run_id = store.start(node="n", provider="luma", params={}, context=None, options={})
        unit = Reservations(store).try_reserve("item-1", run_id)
        assert isinstance(unit, Unit)
        with store.write() as db:
            db.execute(sql("UPDATE runs SET lease_until = 1"))
            db.execute(sql("UPDATE units SET lease_until = 1"))
        store.heartbeat.beat()
        with store.read() as db:
            leases = db.execute(
                sql("SELECT lease_until FROM runs UNION ALL SELECT lease_until FROM units")
            ).scalars()
            assert all(lease > time.time() + 20 for lease in leases)
