"""The engine's steps and serve's side of them against a real Redis: a step held by a worker
whose task waits there (a poll's countdown) is sent again at once when that worker dies, not
when it is late, and one no worker received is sent again within seconds; the run log is read
for missed ends of queued runs only."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

redis = pytest.importorskip("redis", reason="the [engine] extra (redis-py) is not installed")
pytest.importorskip("celery", reason="the [engine] extra (celery) is not installed")

from dreamnodes.engine.dispatch import CeleryEngine  # noqa: E402
from dreamnodes.engine.steps import RECEIVE, STALL, Step, Steps, new_token  # noqa: E402
from dreamnodes.engine.workers import Registry  # noqa: E402
from dreamnodes.runlog.owner import parse, this_owner  # noqa: E402

DB = 6  # a Redis database of this module's own (flushed first)


@pytest.fixture
def url(redis_url: str) -> Iterator[str]:
    url = f"{redis_url.rsplit('/', 1)[0]}/{DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()


def _dead_owner() -> str:
    """The owner name of a process of this host that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    parts = parse(this_owner())
    assert parts is not None
    return f"{parts[0]}:{process.pid}:-"


def _step(run_id: str, **fields: object) -> Step:
    base: dict[str, object] = {
        "run_id": run_id,
        "kind": "poll",
        "token": new_token(),
        "due": time.time() + 10 * STALL,  # far from late
        "family": "video",
        "generation_id": "g-1",
    }
    return Step(**{**base, **fields})  # type: ignore[arg-type]


def test_hold_marks_the_current_step_only_and_a_hand_over_clears_it(url: str) -> None:
    steps = Steps(redis.Redis.from_url(url))
    step = _step("r_held")
    assert steps.begin(step)
    assert not steps.hold("r_held", "another-token", "w1")  # a superseded task
    assert not steps.hold("r_missing", step.token, "w1")
    assert steps.hold("r_held", step.token, "w1")
    held = steps.get("r_held")
    assert held is not None and held.held_by == "w1" and held.owner is None
    assert held.token == step.token and held.due == step.due
    taken = steps.take("r_held", step.token, "w1")  # its countdown over, the task runs
    assert taken is not None and taken.owner == "w1"
    assert not steps.hold("r_held", step.token, "w2")  # running: never re-marked
    following = steps.next(taken, polls=1)
    assert following is not None and following.held_by is None and following.owner is None


def test_the_watchdog_resends_at_once_a_step_held_by_a_dead_worker(url: str) -> None:
    steps = Steps(redis.Redis.from_url(url))
    dead, live = _step("r_dead"), _step("r_live")
    for step in (dead, live):
        assert steps.begin(step)
    assert steps.hold("r_dead", dead.token, _dead_owner())
    assert steps.hold("r_live", live.token, this_owner())
    engine = CeleryEngine(url)
    try:
        assert engine.watch_once() == ["r_dead"]  # long before it would be late
    finally:
        engine.limiters.close()
        engine.redis.close()
    again = steps.get("r_dead")
    assert again is not None and again.token != dead.token and again.held_by is None
    untouched = steps.get("r_live")
    assert untouched is not None and untouched.token == live.token


def test_a_step_no_worker_received_is_sent_again_while_a_worker_lives(url: str) -> None:
    # Its message was popped by a worker that died before reading it: in no Redis list.
    client = redis.Redis.from_url(url)
    steps = Steps(client)
    lost = _step("r_lost", kind="create", queued=time.time() - RECEIVE - 1.0)
    fresh = _step("r_fresh", kind="create", queued=time.time())
    for step in (lost, fresh):
        assert steps.begin(step)
    engine = CeleryEngine(url)
    try:
        assert engine.watch_once() == []  # no worker alive: it waits in the queue for one
        Registry(client)  # this process, alive, in the list of workers
        assert engine.watch_once() == ["r_lost"]
    finally:
        engine.limiters.close()
        engine.redis.close()
    again = steps.get("r_lost")
    assert again is not None and again.token != lost.token
    assert again.queued is not None and again.queued > lost.queued  # type: ignore[operator]


class _Log:
    """A run log that counts its reads: every run has ended."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def get(self, run_id: str) -> Any:
        self.read.append(run_id)
        return SimpleNamespace(status="succeeded")


def test_missed_ends_are_read_for_queued_runs_only(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dreamnodes.engine import dispatch

    monkeypatch.setattr(dispatch, "_READ_EVERY", 0.02)
    log = _Log()

    async def main() -> tuple[bool, bool]:
        engine = CeleryEngine(url)
        loop = asyncio.get_running_loop()
        queued, waiting = loop.create_future(), loop.create_future()
        engine._ends = {"r_queued": (queued, log), "r_waiting": (waiting, log)}  # type: ignore[dict-item]
        engine._queued = {"r_queued"}  # r_waiting still waits for a running slot
        reader = loop.create_task(engine._read_ends())
        try:
            await asyncio.wait_for(queued, 10)
            await asyncio.sleep(0.1)
        finally:
            reader.cancel()
            engine.limiters.close()
            engine.redis.close()
        return queued.done(), waiting.done()

    assert asyncio.run(main()) == (True, False)
    assert set(log.read) == {"r_queued"}


def test_a_429_a_worker_receives_holds_every_process_on_the_key(url: str) -> None:
    """serve takes the slots, but a worker's 429 is learned in the shared limits at once."""
    from dreamnodes.api.limits import Limits
    from dreamnodes.catalog.requests import ApiRequest
    from dreamnodes.engine.redis_limits import RedisLimiter, RedisLimiters
    from dreamnodes.engine.work import Work

    serve_side = RedisLimiters(url)("k-1", "https://api.example", Limits())
    assert isinstance(serve_side, RedisLimiter)
    limiters = RedisLimiters(url)
    work = Work(SimpleNamespace(), Steps(redis.Redis.from_url(url)), limiters, lambda *a: None)  # type: ignore[arg-type]
    record = SimpleNamespace(
        provider="luma", options={"base_url": "https://api.lumalabs.ai/dream-machine/v1"}
    )
    step = _step("r-1", limiter=serve_side.id, base_url=None)
    runner = work._runner(record, step)  # type: ignore[arg-type]
    assert serve_side.snapshot()["video"]["held_seconds"] == 0
    create = ApiRequest(method="POST", path="/generations", json={"prompt": "x"}, billable=True)
    runner._rate_limited(create, 7.0)
    assert 5.0 < serve_side.snapshot()["video"]["held_seconds"] <= 7.0
    asyncio.run(work.aclose())
    limiters.close()


def test_a_run_that_cannot_be_queued_ends_failed_and_says_why(url: str, tmp_path: Any) -> None:
    """No shared limiter (or Redis away): the run is recorded failed, not left running."""
    from dreamnodes.errors import DreamError
    from dreamnodes.execution.runner import Runner
    from dreamnodes.runlog.store import RunStore

    engine = CeleryEngine(url)
    store = RunStore(str(tmp_path / "runs.sqlite3"))

    async def attempt() -> None:
        async with Runner(api_key="k-1", limits=None) as runner:
            try:
                await engine.run(runner, store, "dream_machine", {"prompt": "a kite"}, wait="poll")
            finally:
                await engine.aclose()

    with pytest.raises(DreamError) as raised:
        asyncio.run(attempt())
    assert raised.value.code == "internal_error"
    [run] = store.list()
    assert run.status == "failed"
    assert run.error is not None and "Redis limiter" in run.error["message"]
    store.close()


def test_a_saturated_accounts_generations_are_looked_at_sooner(url: str) -> None:
    """A worker hands a running generation on to its next look at the job's pace (2 s for a
    video's first), but within a few hundredths of a second while serve waits for a running
    slot; the end it sees frees the slot for that create and teaches every process how long
    a generation takes."""
    from dreamnodes.api.limits import Limits
    from dreamnodes.engine.redis_limits import RedisLimiter, RedisLimiters
    from dreamnodes.engine.work import Work

    serve_side = RedisLimiters(url)("k-1", "https://api.example", Limits(video_concurrent=1))
    assert isinstance(serve_side, RedisLimiter)
    steps = Steps(redis.Redis.from_url(url))
    sent: list[tuple[str, str, str, float]] = []
    finished: list[str] = []
    store = SimpleNamespace(finish=lambda run_id, **_: finished.append(run_id))
    work = Work(store, steps, RedisLimiters(url), lambda *a: sent.append(a))  # type: ignore[arg-type]
    record = SimpleNamespace(id="r-1", status="running", provider="luma", options={})

    async def look(state: str, run_id: str = "r-1") -> float:
        step = steps.get(run_id)
        assert step is not None
        runner = work._runner(record, step)  # type: ignore[arg-type]
        prepared = runner.prepare("dream_machine", {"prompt": "a red boat", "model": "ray-2"})
        output = {"id": "g-1", "state": state}
        record.id = run_id
        await work._after_look(step, record, runner, prepared, output, first=False)  # type: ignore[arg-type]
        return sent[-1][3] if sent else -1.0

    async def main() -> None:
        slot = await serve_side.acquire("video")
        token = serve_side.detach(slot)
        begun = _step("r-1", limiter=serve_side.id, slot=token, answered=time.time() - 0.5)
        assert steps.begin(begun)
        assert await look("dreaming") == 2.0  # nobody waits: the job's own pace
        waiting = asyncio.create_task(serve_side.acquire("video"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        assert await look("dreaming") < 0.1  # a create waits for this slot
        await look("completed")
        (await asyncio.wait_for(waiting, 2.0)).release()  # the end freed the slot
        assert finished == ["r-1"] and steps.get("r-1") is None
        seen = redis.Redis.from_url(url).lrange(serve_side.keys("video")["durations"], 0, -1)
        assert len(seen) == 1 and 0.5 <= float(seen[0]) < 1.5  # from the create's answer
        # The last of a loop: nobody waits any more, but its create waited for its slot.
        redis.Redis.from_url(url).delete(serve_side.keys("video")["wanted"])
        last = serve_side.detach(await serve_side.acquire("video"))
        begun = _step("r-2", limiter=serve_side.id, slot=last, answered=time.time(), busy=True)
        assert steps.begin(begun)
        assert 0.4 < await look("dreaming", "r-2") < 0.6  # from just before the shortest seen

    asyncio.run(main())
    asyncio.run(work.aclose())
