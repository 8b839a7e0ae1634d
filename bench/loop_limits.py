"""1,000 video creates with --wait through --each at the Build-tier limits: makespan vs minimum.

Run: .venv/bin/python bench/loop_limits.py [COUNT] [TIME_SCALE]
"""

from __future__ import annotations

import sys
from collections import Counter

from _loop_common import run_loop, theoretical_minimum

from dreamnodes.sandbox import SandboxConfig


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
    cfg = SandboxConfig(port=0, time_scale=scale, render=False, credits_cents=1e9)
    result = run_loop(cfg, count)
    best, formula = theoretical_minimum(count, cfg)
    posts = Counter(status for method, _, status in result.log if method == "POST")
    gets = sum(1 for method, _, _ in result.log if method == "GET")
    completed = sum(1 for line in result.lines if line.get("state") == "completed")
    print(f"items {count}, time scale {scale:g}, exit code {result.code}")
    print(
        f"completed {completed}, output lines {len(result.lines)}, "
        f"generations {len(result.generations)}"
    )
    print(f"makespan {result.seconds:.2f} s wall (includes process start-up)")
    print(f"theoretical minimum {best:.2f} s: {formula}")
    print(f"ratio {result.seconds / best:.3f} (goal <= 1.10)")
    print(f"429s received {posts.get(429, 0)}")
    errors = Counter(
        (line["error"]["code"], line["error"]["message"][:120])
        for line in result.lines
        if "error" in line
    )
    for (code, message), n in errors.most_common(5):
        print(f"  error x{n}: {code}: {message}")
    print(f"polls per generation {gets / max(1, len(result.generations)):.2f}")


if __name__ == "__main__":
    main()
