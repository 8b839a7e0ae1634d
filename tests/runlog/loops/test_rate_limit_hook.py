"""A 429 answer to a create reaches the key's scheduler, which then holds that family."""

from __future__ import annotations

import asyncio

import pytest

from dreamnodes.api.limits import Limits
from dreamnodes.api.scheduler import Scheduler
from dreamnodes.errors import DreamError
from dreamnodes.execution.runner import Runner
from dreamnodes.sandbox import Sandbox, SandboxConfig

from .conftest import KEY


def test_a_429_on_a_create_holds_the_family() -> None:
    cfg = SandboxConfig(port=0, time_scale=1.0, render=False, fault_rate_429=1.0)

    async def create(url: str) -> dict[str, object]:
        async with Runner(
            api_key=KEY, base_url=url, limits=Limits(), retry={"max_attempts": 1}
        ) as r:
            with pytest.raises(DreamError) as caught:
                await r.run("dream_machine", {"prompt": "held", "model": "ray-2"})
            assert caught.value.code == "rate_limited"
            return Scheduler.shared(KEY, url).snapshot()

    with Sandbox(cfg) as sb:
        snapshot = asyncio.run(create(sb.luma_url))
    # The sandbox's fault 429 asks for Retry-After: 1 s.
    assert 0.5 < snapshot["video"]["held_seconds"] <= 1.0
    assert snapshot["image"]["held_seconds"] == 0.0
    assert snapshot["video"]["running"] == 0


def test_a_429_on_a_read_holds_nothing() -> None:
    cfg = SandboxConfig(port=0, time_scale=1.0, render=False, fault_rate_429=1.0)

    async def read(url: str) -> dict[str, object]:
        async with Runner(
            api_key=KEY, base_url=url, limits=Limits(), retry={"max_attempts": 1}
        ) as r:
            with pytest.raises(DreamError):
                await r.get("00000000-0000-0000-0000-000000000000")
            return Scheduler.shared(KEY, url).snapshot()

    with Sandbox(cfg) as sb:
        snapshot = asyncio.run(read(sb.luma_url))
    assert snapshot["video"]["held_seconds"] == 0.0
