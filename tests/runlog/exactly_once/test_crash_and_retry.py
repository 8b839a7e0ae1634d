"""A single run whose answer was lost, killed, or stopped: `runs retry` never pays twice."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path

import pytest

from .conftest import Fake, dn, kill, start, until

PARAMS = json.dumps({"prompt": "a lighthouse at dusk", "model": "ray-2"})


def run_args(fake: Fake, store: str, *more: str) -> list[str]:
    return [
        "run",
        "dream_machine",
        "--params",
        PARAMS,
        "--base-url",
        fake.base,
        "--store",
        store,
        *more,
    ]


def only_run(store: str) -> dict[str, object]:
    listed = dn("runs", "list", "--json", "--store", store)
    (run,) = json.loads(listed.out)
    return dict(run)


def test_a_lost_answer_whose_lookup_failed_is_found_by_runs_retry(fake: Fake, store: str) -> None:
    fake.control(lose_answers=1, fail_lists=100)
    failed = dn(*run_args(fake, store, "--max-attempts", "2"))
    assert failed.code == 1
    error = failed.json()["error"]
    assert error["code"] == "unknown_outcome" and "not sent again" in error["message"]
    assert fake.stats()["creates"] == 1

    fake.control(fail_lists=0)
    run = only_run(store)
    retried = dn("runs", "retry", str(run["id"]), "--store", store, "--base-url", fake.base)
    assert retried.code == 0, retried.err
    (made,) = fake.stats()["generations"]
    assert retried.json()["id"] == made["id"]
    assert fake.stats()["creates"] == 1


@pytest.mark.parametrize("moment", ["answer on its way", "waiting"])
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_a_killed_or_stopped_run_is_retried_at_once_without_paying_again(
    fake: Fake, store: str, moment: str, how: int
) -> None:
    fake.control(duration=2.0, answer_delay=3.0 if moment == "answer on its way" else 0.0)
    process = start(*run_args(fake, store, "--wait", "--timeout", "60"))
    until(lambda: fake.stats()["creates"] == 1)
    if moment == "waiting":
        until(lambda: bool(_generation_recorded(store)))
    killed = kill(process, how)
    assert killed.code != 0

    run = only_run(store)
    assert run["status"] == ("abandoned" if how == signal.SIGKILL else "interrupted")
    fake.control(answer_delay=0.0)
    retried = dn("runs", "retry", str(run["id"]), "--store", store, "--base-url", fake.base)
    assert retried.code == 0, retried.err
    (made,) = fake.stats()["generations"]
    assert retried.json()["id"] == made["id"] and retried.json()["state"] == "completed"
    assert fake.stats()["creates"] == 1


def test_a_live_run_cannot_be_retried_beside_itself(fake: Fake, store: str) -> None:
    fake.control(duration=30.0)
    process = start(*run_args(fake, store, "--wait", "--timeout", "60"))
    try:
        until(lambda: fake.stats()["creates"] == 1)
        run = only_run(store)
        assert run["status"] == "running"
        refused = dn("runs", "retry", str(run["id"]), "--store", store, "--base-url", fake.base)
        assert refused.code == 2 and "still running" in refused.err
    finally:
        kill(process)
    assert fake.stats()["creates"] == 1


def test_an_unexpected_failure_ends_the_run_failed_never_running(fake: Fake, store: str) -> None:
    # A lone surrogate reaches the runtime: whatever breaks, the run log tells the truth.
    done = dn(
        *run_args(fake, store)[:3],
        '{"prompt": "a fox \\ud800", "model": "ray-2"}',
        *run_args(fake, store)[4:],
    )
    assert done.code == 2, done.out
    assert "Traceback" not in done.err
    statuses = [r["status"] for r in json.loads(dn("runs", "list", "--json", "--store", store).out)]
    assert "running" not in statuses
    assert fake.stats()["creates"] == 0


def _generation_recorded(store: str) -> str | None:
    try:
        with sqlite3.connect(store) as db:
            row = db.execute("SELECT generation_id FROM runs").fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else row[0]


def test_a_download_failing_after_a_paid_generation_keeps_the_generation(
    tmp_path: Path, store: str
) -> None:
    blocker = tmp_path / "videos"
    blocker.write_text("a file where the folder should be")
    done = dn(
        "run",
        "dream_machine",
        "--params",
        PARAMS,
        "--sandbox",
        "--wait",
        "--download",
        str(blocker),
        "--store",
        store,
        "--time-scale",
        "20",
    )
    assert done.code == 1, done.out  # not 2: something was sent and paid for
    error = done.json()["error"]
    assert error["generation_id"] and error["generation_id"] in error["message"]
    assert "completed" in error["message"]
    assert list(tmp_path.glob("**/*.part")) == [] and blocker.read_text().startswith("a file")
    run = only_run(store)
    assert run["generation_id"] == error["generation_id"]
