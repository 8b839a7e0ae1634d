"""Cold start of `dreamnodes nodes` against `python -c "import lumaai"` (fresh processes).

    python bench/cold_start.py [--runs N]

Prints the best and the median wall time of N runs of each.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("dreamnodes")
COMMANDS = {
    "dreamnodes nodes": [str(SCRIPT), "nodes"],
    "python -m dreamnodes.cli nodes": [sys.executable, "-m", "dreamnodes.cli", "nodes"],
    'python -c "import lumaai"': [sys.executable, "-c", "import lumaai"],
    'python -c "pass"': [sys.executable, "-c", "pass"],
}


def timed(argv: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    for argv in COMMANDS.values():
        timed(argv)  # warm the disk cache and .pyc files
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):  # interleaved, so both see the same machine state
        for name, argv in COMMANDS.items():
            samples[name].append(timed(argv))
    for name, times in samples.items():
        best, median = min(times) * 1000, statistics.median(times) * 1000
        print(f"{name:<32} best {best:6.0f} ms   median {median:6.0f} ms")


if __name__ == "__main__":
    main()
