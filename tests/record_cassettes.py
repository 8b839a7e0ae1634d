"""Record the node cassettes against the sandbox: ``python tests/record_cassettes.py [node ...]``.

Each scenario in tests/scenarios.py gets a fresh in-process sandbox on the fixed address in
tests/cassettes.py (so lists start empty and asset URLs do not depend on a random port) and is
written to ``cassettes/<node_id>/<scenario>.yaml``, overwriting. Scenarios using a node that is
not in manifest.json yet are skipped and listed. Needs no key and no network.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scenarios import SCENARIOS

import cassettes
from dreamnodes.catalog.package import load_package
from dreamnodes.sandbox import Sandbox, SandboxConfig

TIME_SCALE = 40.0  # a 2.5 s service lifecycle takes ~60 ms plus rendering


def record(node_id: str, name: str, scenario: dict[str, Any]) -> int:
    """Record one scenario; returns how many interactions were written."""
    path = cassettes.cassette_path(node_id, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # record_mode "all" would keep unmatched old interactions
    config = SandboxConfig(
        host=cassettes.RECORD_HOST, port=cassettes.RECORD_PORT, time_scale=TIME_SCALE, limits=False
    )
    with Sandbox(config) as sandbox, tempfile.TemporaryDirectory() as downloads:
        assert sandbox.base_url == cassettes.BASE, sandbox.base_url
        recorder = cassettes.make_vcr(record=True)
        with recorder.use_cassette(str(path)) as cassette:
            asyncio.run(
                cassettes.play(scenario, cassette=cassette, replay=False, download_dir=downloads)
            )
            return len(cassette.data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("nodes", nargs="*", help="node ids (default: every node with scenarios)")
    args = parser.parse_args(argv)
    os.environ["DREAMNODES_RECORD"] = "1"
    known = set(load_package().nodes)
    unknown = [n for n in args.nodes if n not in SCENARIOS]
    if unknown:
        print(
            f"no scenarios for: {', '.join(unknown)} (add them to tests/scenarios.py)",
            file=sys.stderr,
        )
        return 2
    waiting: list[str] = []
    for node_id in args.nodes or list(SCENARIOS):
        for name, scenario in SCENARIOS[node_id].items():
            if not cassettes.steps_available(scenario, known):
                missing = sorted({s["node"] for s in scenario["steps"]} - known)
                waiting.append(f"{node_id}/{name} (needs {', '.join(missing)})")
                continue
            started = time.monotonic()
            count = record(node_id, name, scenario)
            print(f"{node_id}/{name}: {count} interactions in {time.monotonic() - started:.1f} s")
    for line in waiting:
        print(f"skipped {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
