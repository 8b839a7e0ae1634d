"""Per-call overhead of one node against the official SDK, over the same in-process transport.

dreamnodes: `Runner.run("dream_machine", params with a template, context)` (templates,
labels, validation, rules, mapping, the request, normalising the answer).
SDK: `lumaai.AsyncLumaAI(...).generations.create(...)` with the same body.
Both talk to an `httpx.MockTransport` answering a recorded Generation. Goal: dreamnodes
at most 50 % of the SDK's time per call.

    python bench/node_overhead.py [--calls N] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx
import lumaai

from dreamnodes.execution.runner import Runner

GENERATION = {
    "id": "7ca76429-99d1-46ab-bb2e-84baa4acdb04",
    "state": "queued",
    "generation_type": "video",
    "model": "ray-2",
    "created_at": "2025-01-01T00:00:00.000Z",
    "failure_reason": None,
    "assets": {"video": None, "image": None, "progress_video": None},
    "request": {
        "generation_type": "video",
        "model": "ray-2",
        "prompt": "A tiger walking in snow",
        "aspect_ratio": "16:9",
        "loop": False,
    },
}
BODY = json.dumps(GENERATION).encode()
PARAMS = {
    "model": "Ray 2 (best)",
    "prompt": "{{trigger.prompt}}",
    "loop": "No",
    "aspect_ratio": "16:9",
}
CONTEXT = {"trigger": {"prompt": "A tiger walking in snow"}}


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, content=BODY, headers={"content-type": "application/json"})


async def _time(call: Callable[[], Awaitable[object]], calls: int) -> float:
    for _ in range(min(500, calls)):  # warm up: caches, compiled validators, connection objects
        await call()
    samples = []
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(calls // 5):
            await call()
        samples.append((time.perf_counter() - began) / (calls // 5))
    return min(samples) * 1e6  # best of five rounds, µs per call


async def main(calls: int, profile: bool) -> None:
    transport = httpx.MockTransport(_answer)
    runner = Runner(
        api_key="bench-key-0000",
        base_url="https://api.invalid/dream-machine/v1",
        transport=transport,
    )
    sdk = lumaai.AsyncLumaAI(
        auth_token="bench-key-0000",
        base_url="https://api.invalid/dream-machine/v1",
        http_client=httpx.AsyncClient(transport=transport),
        max_retries=0,
    )
    out = await runner.run("dream_machine", PARAMS, CONTEXT)
    assert out["id"] == GENERATION["id"] and out["state"] == "queued", out

    async def ours() -> object:
        return await runner.run("dream_machine", PARAMS, CONTEXT)

    async def theirs() -> object:
        return await sdk.generations.create(
            model="ray-2", prompt="A tiger walking in snow", loop=False, aspect_ratio="16:9"
        )

    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            await ours()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        return
    rounds_ours, rounds_sdk = [], []
    for _ in range(3):  # interleave so both see the same machine state
        rounds_ours.append(await _time(ours, calls))
        rounds_sdk.append(await _time(theirs, calls))
    mine, sdk_us = statistics.median(rounds_ours), statistics.median(rounds_sdk)
    print(f"dreamnodes Runner.run(dream_machine): {mine:8.1f} µs/call")
    print(f"lumaai generations.create:            {sdk_us:8.1f} µs/call")
    print(f"ratio: {mine / sdk_us:.0%} of the SDK (goal: at most 50 %)")
    await runner.aclose()
    await sdk.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.profile))
