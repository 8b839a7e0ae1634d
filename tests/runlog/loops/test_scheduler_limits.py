"""The scheduler keeps a loop within the account's limits: (almost) no 429s, at most 10 running."""

from __future__ import annotations

import asyncio
import math
import time

from dreamnodes.api.limits import Limits
from dreamnodes.api.scheduler import Scheduler
from dreamnodes.execution.runner import Runner
from dreamnodes.runlog.recorded import run_items
from dreamnodes.sandbox import Sandbox, SandboxConfig

from .conftest import KEY

SCALE = 100.0
COUNT = 60


async def _loop(url: str) -> tuple[list[object], int, float]:
    limits = Limits().scaled(SCALE)
    highest = 0
    async with Runner(
        api_key=KEY,
        base_url=url,
        limits=limits,
        poll_scale=SCALE,
        retry={"first_delay": 0.01, "max_delay": 0.3},
    ) as runner:
        scheduler = Scheduler.shared(KEY, url)

        async def watch() -> None:
            nonlocal highest
            while True:
                highest = max(highest, scheduler.snapshot()["video"]["running"])
                await asyncio.sleep(0.002)

        watcher = asyncio.create_task(watch())
        started = time.monotonic()
        results = [
            r
            async for r in run_items(
                runner,
                None,
                "dream_machine",
                {"prompt": "{{item}}", "model": "ray-2"},
                [f"a kite number {i} over the sea" for i in range(COUNT)],
                wait="poll",
                concurrency=40,
            )
        ]
        elapsed = time.monotonic() - started
        watcher.cancel()
    return results, highest, elapsed


def test_sixty_creates_within_build_tier_limits() -> None:
    with Sandbox(SandboxConfig(port=0, time_scale=SCALE, render=False)) as sb:
        results, highest, elapsed = asyncio.run(_loop(sb.luma_url))
        log = sb.request_log()
        assert len(sb.generations()) == COUNT
    assert all(r.ok for r in results)  # type: ignore[attr-defined]
    refused = [e for e in log if e[0] == "POST" and e[2] == 429]
    assert len(refused) <= 1
    assert 1 <= highest <= 10
    window = 60.0 / SCALE
    # 20 creates a minute: 60 creates need at least two whole windows after the first burst.
    assert elapsed >= (math.ceil(COUNT / 20) - 1) * window
    assert elapsed < 3 * (math.ceil(COUNT / 20) - 1) * window + 2.0
