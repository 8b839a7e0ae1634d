"""Polling versus callbacks: requests per generation, and delay from completion to return.

N generations run at once (no limits hit: N <= 10) with `wait=poll` and `wait=callback`; the
completion time is when the sandbox's completed callback went out (callback runs) or the
generation's completion as seen by a listener on the sandbox (both: the sandbox's own
`Engine.listeners` hook, read on its loop).
Run: .venv/bin/python bench/poll_vs_callback.py [N] [TIME_SCALE]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from dreamnodes.api.limits import Limits
from dreamnodes.execution.runner import Runner
from dreamnodes.sandbox import Sandbox, SandboxConfig

KEY = "bench-key-0123456789"


async def _one(runner: Runner, wait: str, prompt: str) -> tuple[str, float]:
    out = await runner.run("dream_machine", {"prompt": prompt, "model": "ray-2"}, wait=wait)
    return str(out["id"]), time.monotonic()


async def _batch(url: str, wait: str, n: int, scale: float) -> dict[str, float]:
    async with Runner(
        api_key=KEY, base_url=url, limits=Limits().scaled(scale), poll_scale=scale
    ) as runner:
        jobs = [_one(runner, wait, f"{wait} lantern {i}") for i in range(n)]
        return dict(await asyncio.gather(*jobs))


def measure(wait: str, n: int, scale: float) -> tuple[float, list[float]]:
    cfg = SandboxConfig(port=0, time_scale=scale, render=False, credits_cents=1e9)
    completed_at: dict[str, float] = {}
    with Sandbox(cfg) as sb:
        app: Any = sb._app  # the bench reads completion times straight off the sandbox's loop

        def listener(record: dict[str, Any]) -> None:
            if record["gen"]["state"] == "completed":
                completed_at.setdefault(record["id"], time.monotonic())

        app.engine.listeners.append(listener)
        returned = asyncio.run(_batch(sb.luma_url, wait, n, scale))
        requests = len(sb.request_log())
    delays = [returned[g] - completed_at[g] for g in returned]
    return requests / n, delays


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    print(
        f"{n} generations at once, time scale {scale:g} "
        f"(a video takes {2.5 / scale:.2f} s; polls every 2-5 s / {scale:g})"
    )
    for wait in ("poll", "callback"):
        per_gen, delays = measure(wait, n, scale)
        print(
            f"{wait:>8}: {per_gen:.2f} requests per generation; completion -> return "
            f"median {statistics.median(delays) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
