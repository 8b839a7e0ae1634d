"""A loop of Ray 3.2 videos at the Luma Agents API's limits (30 creates a minute over a sliding
window and 10 unfinished jobs by default): makespan against the minimum those two limits allow.

Run: .venv/bin/python bench/loop_agents.py [COUNT] [TIME_SCALE] [PER_MINUTE] [CONCURRENT]

In process, against the sandbox's Agents face with its limits on: one Runner (one scheduler for
the key) runs the items through `run_items` with waiting, so a running slot is held until each
generation ends. Any 429 would show in the counts (the retry policy allows one attempt).
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections import Counter
from typing import Any

from dreamnodes.api.limits import Limits
from dreamnodes.execution.runner import Runner
from dreamnodes.runlog.recorded import run_items
from dreamnodes.sandbox import Sandbox, SandboxConfig


def minimum(count: int, per_window: int, concurrent: int, cfg: SandboxConfig) -> tuple[float, str]:
    """The shortest makespan N creates per window W and C unfinished jobs of D seconds allow."""
    w = cfg.scaled(60.0)
    d = cfg.scaled(cfg.queued_seconds + cfg.dreaming_seconds)
    windows = math.ceil(count / per_window) - 1
    rest = count - windows * per_window
    if math.ceil(per_window / concurrent) * d <= w:
        best = windows * w + math.ceil(rest / concurrent) * d
        formula = "T = (ceil(M/N)-1)*W + ceil(r/C)*D"
    else:
        best = math.ceil(count / concurrent) * d
        formula = "T = ceil(M/C)*D"
    return best, f"{formula}  M={count} N={per_window} W={w:.3f}s C={concurrent} D={d:.4f}s"


async def loop(sandbox: Sandbox, count: int, limits: Limits, scale: float) -> list[Any]:
    params = {"prompt": "Wave {{item.n}}", "resolution": "360p", "wait": "poll"}
    async with Runner(
        api_key="bench-agents",
        provider="luma_agents",
        base_url=sandbox.luma_agents_url,
        limits=limits,
        poll_scale=scale,
        retry={"max_attempts": 1},
    ) as runner:
        items = [{"n": n} for n in range(count)]
        return [
            r async for r in run_items(runner, None, "ray_video", params, items, concurrency=64)
        ]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
    per_minute = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    concurrent = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    cfg = SandboxConfig(
        port=0,
        time_scale=scale,
        render=False,
        agents_per_minute=per_minute,
        agents_concurrent=concurrent,
        agents_balance_usd=1e9,
    )
    limits = Limits(agents_per_minute=per_minute, agents_concurrent=concurrent).scaled(scale)
    with Sandbox(cfg) as sandbox:
        started = time.perf_counter()
        results = asyncio.run(loop(sandbox, count, limits, scale))
        seconds = time.perf_counter() - started
        log = sandbox.request_log()
    best, formula = minimum(count, per_minute, concurrent, cfg)
    posts = Counter(status for method, path, status in log if method == "POST")
    gets = sum(1 for method, _, _ in log if method == "GET")
    done = sum(1 for r in results if r.error is None and r.output.get("state") == "completed")
    print(f"items {count}, time scale {scale:g}, limits {per_minute}/min and {concurrent} running")
    print(f"completed {done}, errors {sum(1 for r in results if r.error is not None)}")
    print(f"makespan {seconds:.2f} s wall ({seconds * scale / 60:.1f} service minutes)")
    print(f"theoretical minimum {best:.2f} s: {formula}")
    print(f"ratio {seconds / best:.3f}")
    print(f"429s received {posts.get(429, 0)}; polls per generation {gets / max(1, count):.2f}")


if __name__ == "__main__":
    main()
