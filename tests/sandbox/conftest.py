"""Fixtures: an in-process sandbox with fast phases, and SDK clients pointed at it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lumaai import LumaAI

from dreamnodes.sandbox import Sandbox, SandboxConfig

MakeSandbox = Callable[..., Sandbox]


@pytest.fixture
def make_sandbox() -> Iterator[MakeSandbox]:
    started: list[Sandbox] = []

    def make(**overrides: Any) -> Sandbox:
        settings: dict[str, Any] = {"time_scale": 20.0}
        settings.update(overrides)
        sandbox = Sandbox(SandboxConfig(**settings)).start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    return make_sandbox()


@pytest.fixture
def client(sandbox: Sandbox) -> LumaAI:
    return LumaAI(auth_token="test-key", base_url=sandbox.luma_url, max_retries=0)


def wait_done(client: LumaAI, gen_id: str, timeout: float = 15.0) -> Any:
    """Poll like a user would until the generation ends."""
    deadline = time.monotonic() + timeout
    while True:
        generation = client.generations.get(gen_id)
        if generation.state in ("completed", "failed"):
            return generation
        assert time.monotonic() < deadline, f"{gen_id} still {generation.state}"
        time.sleep(0.02)


WaitDone = Callable[..., Any]


@pytest.fixture
def done() -> WaitDone:
    return wait_done
