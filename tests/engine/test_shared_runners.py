"""Two runners on one key, each with its own connection to the shared limiter (as two workers
would be), run a loop against the sandbox within the account's limits: no 429 for the running
cap, at most 10 generations running, and the makespan near the limits' minimum."""

from __future__ import annotations

import asyncio
import math
import time
import uuid

import pytest

from dreamnodes.api.limits import Limits
from dreamnodes.execution.runner import Runner
from dreamnodes.runlog.recorded import run_items
from dreamnodes.sandbox import Sandbox, SandboxConfig

pytest.importorskip("redis", reason="the [engine] extra (redis-py) is not installed")

from dreamnodes.engine.redis_limits import RedisLimiters

SCALE = 100.0
EACH = 30


async def _two_workers(url: str, redis_url: str, key: str) -> tuple[list[object], int, float]:
    limits = Limits().scaled(SCALE)
    factories = [RedisLimiters(redis_url, poll=0.01) for _ in range(2)]
    highest = 0

    async def worker(factory: RedisLimiters, name: str) -> list[object]:
        async with Runner(
            api_key=key,
            base_url=url,
            limits=limits,
            limiter=factory,
            poll_scale=SCALE,
            retry={"first_delay": 0.01, "max_delay": 0.3},
        ) as runner:
            items = [f"{name}: a kite number {i} over the sea" for i in range(EACH)]
            prompt = {"prompt": "{{item}}", "model": "ray-2"}
            return [
                r
                async for r in run_items(
                    runner, None, "dream_machine", prompt, items, wait="poll", concurrency=40
                )
            ]

    async def watch() -> None:
        nonlocal highest
        view = factories[0](key, url, limits)
        while True:
            highest = max(highest, view.snapshot()["video"]["running"])
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    started = time.monotonic()
    try:
        done = await asyncio.gather(*(worker(f, n) for f, n in zip(factories, "ab", strict=True)))
    finally:
        watcher.cancel()
        for factory in factories:
            factory.close()
    return [r for results in done for r in results], highest, time.monotonic() - started


def test_two_runners_share_the_keys_limits_through_redis(redis_url: str) -> None:
    with Sandbox(SandboxConfig(port=0, time_scale=SCALE, render=False)) as sb:
        results, highest, elapsed = asyncio.run(
            _two_workers(sb.luma_url, redis_url, "shared-" + uuid.uuid4().hex)
        )
        log = sb.request_log()
        assert len(sb.generations()) == 2 * EACH
    assert all(r.ok for r in results)  # type: ignore[attr-defined]
    refused = [e for e in log if e[0] == "POST" and e[2] == 429]
    assert len(refused) <= 1
    assert 1 <= highest <= 10
    window = 60.0 / SCALE
    minimum = (math.ceil(2 * EACH / 20) - 1) * window
    assert minimum <= elapsed < 3 * minimum + 2.0
    print(f"60 creates by two runners: {elapsed:.2f} s (minimum {minimum:.2f} s)")
