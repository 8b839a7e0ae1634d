"""The shared limiter against a real Redis: separate processes on one key keep its limits
together, a 429 learned by one holds all, and a dead holder's slot expires with its lease."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

redis = pytest.importorskip("redis", reason="the [engine] extra (redis-py) is not installed")

from dreamnodes.engine.redis_limits import RedisLimiter, RedisLimiters  # noqa: E402

from .limits_worker import COUNT, LIMITS  # noqa: E402

WORKER = Path(__file__).with_name("limits_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def _worker(mode: str, url: str, key: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, url, key], stdout=subprocess.PIPE, text=True, env=env
    )


def _limiter(url: str, key: str, **kwargs: float) -> RedisLimiter:
    return RedisLimiter(redis.Redis.from_url(url), key, "http://api", LIMITS, **kwargs)


def test_two_processes_on_one_key_keep_the_running_cap_and_the_window(redis_url: str) -> None:
    key = uuid.uuid4().hex
    started = time.time()
    workers = [_worker("load", redis_url, key) for _ in range(2)]
    outputs = [w.communicate(timeout=60)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0]
    grants = [json.loads(line) for out in outputs for line in out.splitlines()]
    assert len(grants) == 2 * COUNT
    assert max(g["running"] for g in grants) <= LIMITS.video_concurrent
    times = sorted(g["granted"] for g in grants)
    window, per = LIMITS.window_seconds, LIMITS.video_per_minute
    slack = 0.02  # a grant is printed a moment after Redis counted it
    for i, first in enumerate(times):
        inside = [t for t in times[i:] if t < first + window - slack]
        assert len(inside) <= per, f"{len(inside)} creates within one window from {first}"
    # And at the limits, not below them: 24 creates at 6 a window need 3 windows after the first.
    minimum = (2 * COUNT / per - 1) * window
    assert times[-1] - started < minimum + 1.5, times[-1] - started


def test_a_429_learned_by_one_holds_the_other(redis_url: str) -> None:
    key = uuid.uuid4().hex
    one, other = _limiter(redis_url, key), _limiter(redis_url, key)
    one.rate_limited("video", 0.6)
    assert other.snapshot()["video"]["held_seconds"] > 0.4

    async def take() -> float:
        started = time.monotonic()
        slot = await other.acquire("video")
        slot.release()
        return time.monotonic() - started

    assert 0.5 <= asyncio.run(take()) < 1.2
    # Without Retry-After the hold is a guess from the window's spacing, doubling per 429.
    one.rate_limited("image", None)
    one.rate_limited("image", None)
    held = other.snapshot()["image"]["held_seconds"]
    spacing = LIMITS.window_seconds / LIMITS.image_per_minute
    assert spacing < held <= 2 * spacing


def test_a_dead_holders_slot_expires_and_a_live_ones_is_renewed(redis_url: str) -> None:
    key = uuid.uuid4().hex
    limits = LIMITS.__class__(video_concurrent=1, window_seconds=0.5)
    holder = _worker("hold", redis_url, key)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        waiter = RedisLimiter(redis.Redis.from_url(redis_url), key, "http://api", limits)

        async def take(timeout: float) -> float:
            started = time.monotonic()
            slot = await asyncio.wait_for(waiter.acquire("video"), timeout)
            slot.release()
            return time.monotonic() - started

        # Alive past two leases (0.5 s each): its slot is renewed, nobody else gets in.
        with pytest.raises(TimeoutError):
            asyncio.run(take(1.2))
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        assert asyncio.run(take(5.0)) < 0.8  # within one lease of its last renewal
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_learned_limits_and_a_refused_create_are_shared(redis_url: str) -> None:
    key = uuid.uuid4().hex
    one, other = _limiter(redis_url, key), _limiter(redis_url, key)
    one.learn("agents", {"x-ratelimit-limit": "2"})
    assert other.snapshot()["agents"]["per_window_limit"] == 2

    async def run() -> None:
        first = await one.acquire("agents")
        first.answered()
        second = await other.acquire("agents")
        second.refused()  # a 429: neither its slot nor its window entry count
        assert other.snapshot()["agents"] | {"held_seconds": 0} == {
            "running": 1,
            "sent_in_window": 1,
            "waiting": 0,
            "held_seconds": 0,
            "concurrent_limit": LIMITS.agents_concurrent,
            "per_window_limit": 2,
        }
        first.release()
        first.release()  # idempotent
        assert one.snapshot()["agents"]["running"] == 0

    asyncio.run(run())


def test_the_factory_gives_one_limiter_per_key_and_base_url(redis_url: str) -> None:
    factory = RedisLimiters(redis_url)
    try:
        a = factory("k1", "http://api/", LIMITS)
        assert factory("k1", "http://api", LIMITS) is a
        assert factory("k2", "http://api", LIMITS) is not a
        assert "127.0.0.1" not in repr(factory)
    finally:
        factory.close()


def test_a_create_waiting_for_a_running_slot_is_known_to_every_process(redis_url: str) -> None:
    """serve waits for the slot; the workers, looking at the generations, pace their looks."""
    key = uuid.uuid4().hex
    serve, worker = _limiter(redis_url, key), _limiter(redis_url, key)

    async def run() -> None:
        held = [await serve.acquire("video") for _ in range(LIMITS.video_concurrent)]
        assert not worker.saturated("video")  # full, but nobody waits
        waiting = asyncio.create_task(serve.acquire("video"))
        await asyncio.sleep(0.1)
        assert worker.saturated("video") and not worker.saturated("image")
        assert worker.shortest("video") == 0.0  # no generation seen yet
        worker.ran("video", 3.0)
        serve.ran("video", 1.5)
        assert worker.shortest("video") == 1.5  # the shortest any process saw
        for slot in held:
            slot.release()
        late = await waiting
        assert late.waited and not any(slot.waited for slot in held)
        late.release()

    asyncio.run(run())


def test_a_slot_freed_in_another_process_wakes_the_waiter_at_once(redis_url: str) -> None:
    """The waiter looks again only every 5 s here: the release's message wakes it sooner."""
    key = uuid.uuid4().hex
    holder, waiter = _limiter(redis_url, key), _limiter(redis_url, key, poll=5.0)

    async def run() -> float:
        held = [await holder.acquire("video") for _ in range(LIMITS.video_concurrent)]
        waiting = asyncio.create_task(waiter.acquire("video"))
        await asyncio.sleep(0.3)  # it asked, found the cap full, and sleeps
        assert not waiting.done()
        released = time.monotonic()
        held[0].release()
        slot = await asyncio.wait_for(waiting, 4.0)
        took = time.monotonic() - released
        for other in (*held[1:], slot):
            other.release()
        return took

    try:
        assert asyncio.run(run()) < 0.5
    finally:
        holder.close()
        waiter.close()
