"""`serve --engine celery` with three `dreamnodes worker` processes, as a user sees it.

Real processes on a real `redis-server` (skipped, saying why, without one) and one SQLite run
log, every call going to the fake Luma (`tests/runlog/exactly_once/fake_luma.py`) with a
running cap of 10: beyond 10 generations dreaming it answers 429. The service runs on a clock
20 times faster (polls, retry waits) with the running cap as the only binding limit, and each
generation dreams `DURATION` seconds, so a 200-item batch takes seconds, not minutes.

One cluster serves the module; each test starts with three live workers (a killed one is
replaced first) and counts what the fake saw during the test only.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

redis = pytest.importorskip("redis", reason="the [engine] extra (redis-py) is not installed")
pytest.importorskip("celery", reason="the [engine] extra (celery) is not installed")

from .cluster import BATCHES, RUNS, Cluster, Fake, dumps, start_fake, until  # noqa: E402

ITEMS = 200  # the acceptance check: 200 items, 3 workers, one SIGKILLed halfway
DURATION = 0.5  # seconds each fake generation dreams
CAP = 10  # generations dreaming at once before the fake answers 429
WORKERS = 3
SCALE = "20"
SERVE = ("--time-scale", SCALE, "--video-concurrent", str(CAP), "--video-per-minute", "1000000")
STEPS = "dreamnodes:engine:steps"  # engine.steps' hash: each unfinished run's step and owner
DB = 5  # a Redis database of this module's own (flushed first)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cluster(
    request: pytest.FixtureRequest, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, Fake]]:
    """The whole cluster, its run log in one SQLite file, then in PostgreSQL (across machines)."""
    url = f"{redis_url.rsplit('/', 1)[0]}/{DB}"
    redis.Redis.from_url(url).flushdb()
    folder = tmp_path_factory.mktemp("celery-engine")
    store = ""
    if request.param == "postgresql":
        import psycopg

        server = request.getfixturevalue("postgres_url")
        with psycopg.connect(server, autocommit=True) as db:
            db.execute("CREATE DATABASE celery_engine")
        store = server.rsplit("/", 1)[0] + "/celery_engine"
    fake = start_fake(folder)
    cluster = Cluster(folder, url, fake.base, serve_args=SERVE, store_url=store)
    try:
        cluster.start(WORKERS)
        yield cluster, fake
    finally:
        cluster.close()
        fake.stop()


@pytest.fixture
def up(cluster: tuple[Cluster, Fake]) -> tuple[Cluster, Fake]:
    """The cluster with three live workers and the fake back to its test settings."""
    engine, fake = cluster
    fake.control(running_cap=CAP, duration=DURATION, answer_delay=0.0, answer_delays=[])
    engine.heal(WORKERS)
    return engine, fake


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    return {
        "creates": after["creates"] - before["creates"],
        "generations": len(after["generations"]) - len(before["generations"]),
        "refused_429": after["refused_429"] - before["refused_429"],
        "lists": after["lists"] - before["lists"],
    }


def _prompt(i: int) -> str:
    return f"a paper boat number {i} on a river"


def test_a_run_with_prefer_wait_completes_on_the_workers(up: tuple[Cluster, Fake]) -> None:
    cluster, fake = up
    before = fake.stats()
    done_before = sum(w["done"] for w in cluster.engine()["workers"])
    answer = cluster.client.post(
        RUNS,
        json={"params": {"prompt": "a lighthouse in a storm"}, "wait": "poll"},
        headers={"Prefer": "wait=90"},
    )
    assert answer.status_code == 200, answer.text + cluster.logs()
    run = answer.json()
    assert run["status"] == "succeeded", dumps(run)
    assert run["output"]["state"] == "completed"
    assert run["output"]["request"]["prompt"] == "a lighthouse in a storm"
    assert run["generation_id"] == run["output"]["id"]
    assert _delta(before, fake.stats())["creates"] == 1
    # Done by the workers (a create and at least one look), not by serve.
    until(
        lambda: sum(w["done"] for w in cluster.engine()["workers"]) >= done_before + 2,
        30,
        "the workers' counts of steps done to show the run",
    )


def test_the_engine_lists_the_workers_and_a_killed_one_not_alive(
    up: tuple[Cluster, Fake],
) -> None:
    cluster, _ = up
    status = cluster.engine()
    assert status["engine"] == "celery"
    ours = {w.pid for w in cluster.live()}
    alive = {w["pid"] for w in status["workers"] if w["alive"]}
    assert len(ours) == WORKERS and ours <= alive, dumps(status)
    assert {"queued", "unacknowledged"} <= set(status["queue"])
    victim = cluster.live()[0]
    killed = cluster.kill(victim)

    def shown_dead() -> bool:
        lines = {w["pid"]: w for w in cluster.engine()["workers"]}
        return victim.pid in lines and not lines[victim.pid]["alive"]

    until(shown_dead, 15, f"GET /v1/engine to show worker {victim.pid} not alive", every=0.05)
    assert time.monotonic() - killed < 5.0, "seen dead, but not within a few seconds"
    lines = {w["pid"]: w for w in cluster.engine()["workers"]}
    assert all(lines[w.pid]["alive"] for w in cluster.live()), dumps(lines)


@pytest.mark.slow
def test_a_batch_outlives_a_worker_killed_halfway(up: tuple[Cluster, Fake]) -> None:
    cluster, fake = up
    before = fake.stats()
    items = [{"prompt": _prompt(i)} for i in range(ITEMS)]
    body = {"params": {"prompt": "{{item.prompt}}"}, "items": items, "wait": "poll"}
    headers = {"Idempotency-Key": "batch-" + uuid.uuid4().hex}
    posted = cluster.client.post(BATCHES, json=body, headers=headers)
    assert posted.status_code == 202, posted.text
    batch_id = posted.json()["id"]
    victims = []

    def halfway(view: dict[str, Any]) -> None:
        if not victims and view["done"] >= ITEMS // 2:
            victims.append(cluster.kill(cluster.live()[0]))

    batch = cluster.wait_batch(batch_id, timeout=240, on_progress=halfway)
    assert victims, "the batch ended before a worker was killed"
    failed = [item for item in batch["items"] if item["status"] != "succeeded"]
    assert batch["status"] == "succeeded", dumps(failed[:3]) + cluster.logs()
    assert batch["succeeded"] == batch["total"] == ITEMS and batch["failed"] == 0
    # In order: item i's result is item i's own generation.
    prompts = [item["output"]["request"]["prompt"] for item in batch["items"]]
    assert prompts == [_prompt(i) for i in range(ITEMS)]
    generations = {item["output"]["id"] for item in batch["items"]}
    assert len(generations) == ITEMS
    seen = _delta(before, fake.stats())
    assert seen["creates"] == ITEMS and seen["generations"] == ITEMS, seen
    assert seen["refused_429"] == 0, seen
    # The same key again: the same batch, ended, and no new create.
    again = cluster.client.post(BATCHES, json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == batch_id and again.json()["status"] == "succeeded"
    assert again.headers.get("idempotent-replayed") == "true"
    assert cluster.engine()["runs_under_way"] == 0
    assert _delta(before, fake.stats())["creates"] == ITEMS


def test_a_batch_outlives_a_worker_stopped_with_sigterm(up: tuple[Cluster, Fake]) -> None:
    """A deploy stops a worker mid-batch: what it ran finishes, what it held for a countdown
    goes to the others, and every item still gets exactly one generation."""
    cluster, fake = up
    before = fake.stats()
    count = 60
    prompts = [_prompt(i) + " at dusk" for i in range(count)]  # not the other tests' items
    items = [{"prompt": prompt} for prompt in prompts]
    body = {"params": {"prompt": "{{item.prompt}}"}, "items": items, "wait": "poll"}
    posted = cluster.client.post(BATCHES, json=body)
    assert posted.status_code == 202, posted.text
    stopped: list[float] = []

    def a_third_of_the_way(view: dict[str, Any]) -> None:
        if not stopped and view["done"] >= count // 3:
            stopped.append(cluster.stop(cluster.live()[0]))

    batch = cluster.wait_batch(posted.json()["id"], timeout=240, on_progress=a_third_of_the_way)
    assert stopped and stopped[0] < 30, "the worker did not stop within 30 s of SIGTERM"
    failed = [item for item in batch["items"] if item["status"] != "succeeded"]
    assert batch["status"] == "succeeded", dumps(failed[:3]) + cluster.logs()
    assert [item["output"]["request"]["prompt"] for item in batch["items"]] == prompts
    seen = _delta(before, fake.stats())
    assert seen["creates"] == count and seen["generations"] == count, seen
    assert seen["refused_429"] == 0, seen


def test_runs_on_the_workers_outlive_serve_and_show_running(up: tuple[Cluster, Fake]) -> None:
    """serve crashes while a generation dreams: the workers finish the run, and meanwhile the
    run log shows it running (owned by the worker at its step), not abandoned."""
    from dreamnodes.runlog.store import RunStore

    cluster, fake = up
    fake.control(duration=4.0)
    body = {"params": {"prompt": "a lighthouse in fog, alone"}, "wait": "poll"}
    posted = cluster.client.post(RUNS, json=body)
    assert posted.status_code == 202, posted.text
    run_id = posted.json()["id"]
    with RunStore(cluster.store) as log:
        until(lambda: log.get(run_id).generation_id, 30, "the create, on a worker")
        cluster.kill_serve()
        try:
            time.sleep(0.5)
            assert log.get(run_id).shown_status == "running"
            done = until(lambda: log.get(run_id).status != "running", 60, "the run to end")
            assert done and log.get(run_id).status == "succeeded", cluster.logs()
        finally:
            cluster.start_serve()
    assert cluster.client.get(f"/v1/runs/{run_id}").json()["status"] == "succeeded"


@pytest.mark.slow
def test_a_worker_killed_mid_create_leaves_one_generation(up: tuple[Cluster, Fake]) -> None:
    cluster, fake = up
    steps = redis.Redis.from_url(cluster.redis_url)
    fake.control(answer_delays=[120.0])  # the generation is made; its answer never comes back
    before = fake.stats()
    posted = cluster.client.post(
        RUNS, json={"params": {"prompt": "a kite over the dunes"}, "wait": "poll"}
    )
    assert posted.status_code == 202, posted.text
    run_id = posted.json()["id"]
    until(lambda: _delta(before, fake.stats())["creates"] == 1, 60, "the create to arrive")
    step = json.loads(steps.hget(STEPS, run_id) or "{}")
    assert step.get("kind") == "create" and step.get("owner"), step
    pid = int(step["owner"].split(":")[1])
    (victim,) = [w for w in cluster.live() if w.pid == pid]
    cluster.kill(victim)

    def ended() -> dict[str, Any] | None:
        run: dict[str, Any] = cluster.client.get(
            f"/v1/runs/{run_id}", headers={"Prefer": "wait=20"}
        ).json()
        return run if run["status"] != "running" else None

    run = until(ended, 120, f"run {run_id} to end after its worker was killed")
    assert run["status"] == "succeeded", dumps(run) + cluster.logs()
    seen = _delta(before, fake.stats())
    assert seen["creates"] == 1 and seen["generations"] == 1, seen
    assert seen["lists"] >= 1, seen  # the lost answer was looked up, not sent again
    made = [
        g for g in fake.stats()["generations"] if g["request"]["prompt"] == "a kite over the dunes"
    ]
    assert run["generation_id"] == made[0]["id"]
    assert steps.hget(STEPS, run_id) is None
