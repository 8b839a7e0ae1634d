"""1,000 video creates through --each with 20 % faults: nothing lost, never billed twice.

Faults (each 4 % of requests): 429, 500/503, dropped before, dropped after create, truncated JSON.
Run: .venv/bin/python bench/loop_faults.py [COUNT] [TIME_SCALE]
"""

from __future__ import annotations

import sys
from collections import Counter

from _loop_common import run_loop

from dreamnodes.sandbox import SandboxConfig


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
    cfg = SandboxConfig(
        port=0,
        time_scale=scale,
        render=False,
        credits_cents=1e9,
        fault_seed=5,
        fault_rate_429=0.04,
        fault_rate_5xx=0.04,
        fault_rate_drop_before=0.04,
        fault_rate_drop_after=0.04,
        fault_rate_truncated=0.04,
    )
    result = run_loop(cfg, count)
    faults = Counter(str(status) for _, _, status in result.log)
    completed = sum(1 for line in result.lines if line.get("state") == "completed")
    errored = [line["error"] for line in result.lines if "error" in line]
    prompts = Counter(g["request"]["prompt"] for g in result.generations)
    expected = {f"a paper boat number {i} on a river" for i in range(count)}
    print(f"items {count}, time scale {scale:g}, exit code {result.code}, {result.seconds:.2f} s")
    print(f"requests {len(result.log)}: " + ", ".join(f"{k} x{v}" for k, v in faults.most_common()))
    print(f"items completed {completed}, errored {len(errored)}")
    for (code, message), n in Counter((e["code"], e["message"][:110]) for e in errored).most_common(
        5
    ):
        print(f"  error x{n}: {code}: {message}")
    print(f"generations on the sandbox {len(result.generations)} (must equal {count})")
    print(f"prompts with more than one generation {sum(1 for n in prompts.values() if n > 1)}")
    print(f"items without a generation {len(expected - set(prompts))}")
    print(f"missing lines {count - len(result.lines)} (must be 0)")


if __name__ == "__main__":
    main()
