"""Shared by the loop benchmarks: run `dreamnodes run --each` in a subprocess against a sandbox."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from dreamnodes.sandbox import Sandbox, SandboxConfig

KEY = "bench-key-0123456789"
PARAMS = '{"prompt": "{{item}}", "model": "ray-2"}'


@dataclass
class LoopRun:
    code: int
    seconds: float
    lines: list[Any]
    log: list[tuple[str, str, Any]]
    generations: list[dict[str, Any]]


def run_loop(
    cfg: SandboxConfig, count: int, *, wait: str = "poll", concurrency: int = 32
) -> LoopRun:
    """`count` video creates with unique prompts through `--each`, the CLI in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp, Sandbox(cfg) as sb:
        items = os.path.join(tmp, "items.jsonl")
        with open(items, "w", encoding="utf-8") as f:
            for i in range(count):
                f.write(json.dumps(f"a paper boat number {i} on a river") + "\n")
        argv = [
            sys.executable,
            "-m",
            "dreamnodes.cli",
            "run",
            "dream_machine",
            "--params",
            PARAMS,
            "--each",
            items,
            "--wait",
            wait,
            "--concurrency",
            str(concurrency),
            "--store",
            os.path.join(tmp, "runs.sqlite3"),
            "--base-url",
            sb.luma_url,
            "--time-scale",
            str(cfg.time_scale),
        ]
        started = time.monotonic()
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env={**os.environ, "LUMA_API_KEY": KEY},
            check=False,
        )
        seconds = time.monotonic() - started
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        return LoopRun(done.returncode, seconds, lines, sb.request_log(), sb.generations())


def theoretical_minimum(count: int, cfg: SandboxConfig) -> tuple[float, str]:
    """The shortest makespan the Build-tier limits allow, in wall seconds at the time scale.

    N creates per window W, C running at once, each generation D long. Within a window the N
    creates run in ceil(N/C) waves of D (valid while ceil(N/C)*D <= W); after the first window
    each further window admits N more. The last window holds r = count - (ceil(count/N)-1)*N.
    """
    n, c = cfg.video_per_minute, cfg.video_concurrent
    w = cfg.scaled(60.0)
    d = cfg.scaled(cfg.queued_seconds + cfg.dreaming_seconds)
    windows = math.ceil(count / n) - 1
    rest = count - windows * n
    if math.ceil(n / c) * d <= w:
        best = windows * w + math.ceil(rest / c) * d
        formula = "T = (ceil(M/N)-1)*W + ceil(r/C)*D,  r = M - (ceil(M/N)-1)*N"
    else:  # concurrency binds: waves of C, each D long
        best = math.ceil(count / c) * d
        formula = "T = ceil(M/C)*D"
    text = (
        f"{formula}\n  M={count} N={n}/window W={w:.3f}s C={c} "
        f"D=(queued {cfg.queued_seconds}+dreaming {cfg.dreaming_seconds})/{cfg.time_scale:g}"
        f"={d:.4f}s  -> {best:.3f}s"
    )
    return best, text
