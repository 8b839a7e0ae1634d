"""The run log's schema under Alembic: a file made before Alembic is adopted with its runs,
opening again changes nothing, a newer store is refused, a new store opened by several
processes at once is migrated once, and the revisions listed in `schema` are Alembic's."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dreamnodes.errors import DreamError
from dreamnodes.runlog.schema import HEAD, REVISIONS, SCHEMA_VERSION
from dreamnodes.runlog.sqltext import sql
from dreamnodes.runlog.store import RunStore
from dreamnodes.service.ledger import ServiceStore

# The SQLite run log's schema before Alembic, as the code of that time wrote it.
V1 = """
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
"""
V2 = """
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
"""
SERVICE_TABLES = """
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
STARTED = "2026-03-01T10:00:00.000Z"  # 1772359200 s after the epoch


def old_runs(db: sqlite3.Connection) -> None:
    """Three runs as a version-1 file held them: done, failed unanswered, a loop item's."""
    insert = (
        "INSERT INTO runs (id, node, provider, status, started_at, finished_at, params, context,"
        " request, output, error, generation_id, resume_key, options)"
        " VALUES (?, 'dream_machine', 'luma', ?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?, '{}')"
    )
    db.execute(
        insert,
        (
            "r_done",
            "succeeded",
            STARTED,
            STARTED,
            '{"prompt": "a"}',
            '{"id": "g1"}',
            None,
            "g1",
            None,
        ),
    )
    db.execute(
        insert,
        (
            "r_lost",
            "failed",
            STARTED,
            STARTED,
            '{"prompt": "b"}',
            None,
            '{"code": "network_error"}',
            None,
            None,
        ),
    )
    db.execute(
        insert,
        ("r_item", "running", STARTED, None, '{"prompt": "c"}', None, None, None, "loop-key"),
    )
    db.execute(
        "INSERT INTO attempts (run_id, number, status, seconds, error)"
        " VALUES ('r_done', 1, 201, 0.5, NULL)"
    )


def old_file(path: Path, version: int, *, service: bool = False) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(V1)
        old_runs(db)
        if version >= 2:
            db.executescript(V2)
        if service:
            db.executescript(SERVICE_TABLES)
            db.execute(
                "INSERT INTO service_keys (key, kind, fingerprint, target, created_at)"
                " VALUES ('idem-1', 'run', 'fp', 'r_done', 1.0)"
            )
        db.execute(f"PRAGMA user_version = {version}")


def state(path: Path) -> tuple[int, list[str]]:
    with sqlite3.connect(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        stamped = [row[0] for row in db.execute("SELECT version_num FROM alembic_version")]
    return version, stamped


@pytest.mark.parametrize("version", [1, 2])
def test_a_file_from_before_alembic_is_adopted_with_its_runs(tmp_path: Path, version: int) -> None:
    path = tmp_path / "runs.sqlite3"
    old_file(path, version)
    with RunStore(str(path)) as store:
        assert store.revision == HEAD
        runs = {r.id: r for r in store.list()}
        assert set(runs) == {"r_done", "r_lost", "r_item"}
        assert runs["r_done"].output == {"id": "g1"} and runs["r_done"].generation_id == "g1"
        assert runs["r_done"].attempts == [
            {"number": 1, "status": 201, "seconds": 0.5, "error": None}
        ]
        assert runs["r_lost"].error == {"code": "network_error"}
        assert runs["r_lost"].resume_key == "run:r_lost"  # migration 2's backfill
        with store.read() as db:
            units = {
                key: (sent_at, generation_id)
                for key, sent_at, generation_id in db.execute(
                    sql("SELECT key, sent_at, generation_id FROM units")
                )
            }
            claims = db.execute(sql("SELECT generation_id, unit FROM claims")).all()
        # The failed run may have sent a create: its unit says so, so it is looked for first.
        epoch = pytest.approx(1772359200.0, abs=0.01)  # julianday's arithmetic is not exact
        assert units == {
            "run:r_done": (None, "g1"),
            "run:r_lost": (epoch, None),
            "loop-key": (epoch, None),
        }
        assert [tuple(c) for c in claims] == [("g1", "run:r_done")]
        store.finish(store.start(node="n", provider="luma", params={}, context=None, options={}))
        assert len(store.list()) == 4
    assert state(path) == (SCHEMA_VERSION, [HEAD])


def test_a_version_2_file_with_the_service_tables_keeps_them(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    old_file(path, 2, service=True)
    with ServiceStore(str(path)) as store:
        assert store.claim_key("idem-1", "run", "other") == (False, "fp", "r_done")
        store.add_notification("r_done", "https://example.org/hook", "delivered", 1, None)
        assert store.notifications("r_done")[0]["status"] == "delivered"
        assert len(store.list()) == 3
    assert state(path) == (SCHEMA_VERSION, [HEAD])


def test_opening_again_changes_nothing(store_url: str) -> None:
    with RunStore(store_url) as store:
        run_id = store.start(node="n", provider="luma", params={}, context=None, options={})
    for _ in range(2):
        with RunStore(store_url) as store:
            assert store.revision == HEAD
            assert [r.id for r in store.list()] == [run_id]
            with store.read() as db:
                assert db.execute(sql("SELECT version_num FROM alembic_version")).all() == [(HEAD,)]


def test_a_store_at_a_newer_revision_is_refused(store_url: str) -> None:
    with RunStore(store_url) as store, store.write() as db:
        db.execute(sql("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(DreamError, match="newer") as caught:
        RunStore(store_url)
    assert caught.value.field == "store" and caught.value.code == "invalid_input"


def test_the_listed_revisions_are_alembics() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", "dreamnodes.runlog:migrations")
    config.set_main_option("path_separator", "os")
    scripts = ScriptDirectory.from_config(config)
    assert scripts.get_heads() == [HEAD]
    assert [s.revision for s in reversed(list(scripts.walk_revisions()))] == list(REVISIONS)


OPEN_AT_ONCE = """
import sys, time
from pathlib import Path
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
from dreamnodes.runlog.store import RunStore
with RunStore(sys.argv[1]) as store:
    print(store.revision)
"""


def test_processes_opening_a_new_store_at_once_all_succeed(store_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT_ONCE, store_url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    time.sleep(1.0)  # let them import and wait at the line
    go.touch()
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outputs]
    assert [out.strip() for out, _ in outputs] == [HEAD] * 4
    with RunStore(store_url) as store, store.read() as db:
        assert db.execute(sql("SELECT version_num FROM alembic_version")).all() == [(HEAD,)]
