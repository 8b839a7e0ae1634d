"""`dreamnodes serve`: runs accepted per second, and the latency of `POST .../runs` (no wait).

The service and a sandbox run in this process (each on a thread with its own event loop), as
`dreamnodes serve --sandbox` does; the client is a separate process (httpx, keep-alive
connections) so that its own work does not share the server's interpreter. Each POST carries
the token and `{"params": ..., "wait": "none"}` and answers 202 as soon as the run is recorded
in the run log; the run itself (its create, sent to the sandbox) goes on in the background,
competing for the same cores, as it would in use. Two phases: one connection, one request at
a time (the latency of a lone caller), then several connections at once (throughput, and the
latency under that load). Figures are wall-clock on loopback. Usage:
    python bench/serve_runs.py [--connections 8] [--seconds 5] [--serial 300]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from dreamnodes.sandbox import Sandbox, SandboxConfig
from dreamnodes.service import Endpoint, ServiceConfig
from dreamnodes.service.app import serve_in_thread

TOKEN = "bench-token-0123456789abcdef"
KEY = "bench-key-0123456789"
PATH = "/v1/nodes/dream_machine/runs"
BODY = {"params": {"model": "ray-flash-2", "prompt": "A paper boat on a river"}, "wait": "none"}


async def _post_for(
    url: str, connections: int, seconds: float, count: int
) -> tuple[float, list[float], int]:
    """POST from `connections` workers for `seconds` (or `count` requests in all)."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    latencies: list[float] = []
    failures = 0
    async with httpx.AsyncClient(base_url=url, limits=limits, headers=headers) as client:
        await client.post(PATH, json=BODY)  # warm: the runner, the connection
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal failures
            while time.perf_counter() < deadline and len(latencies) + failures < count:
                sent = time.perf_counter()
                answer = await client.post(PATH, json=BODY)
                if answer.status_code == 202:
                    latencies.append(time.perf_counter() - sent)
                else:
                    failures += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, failures


def _client(
    url: str, connections: int, seconds: float, count: int, out: multiprocessing.Queue[Any]
) -> None:
    out.put(asyncio.run(_post_for(url, connections, seconds, count)))


def _measure(
    url: str, connections: int, seconds: float, count: int
) -> tuple[float, list[float], int]:
    context = multiprocessing.get_context("spawn")  # the server's threads are not forked
    out: multiprocessing.Queue[Any] = context.Queue()
    process = context.Process(target=_client, args=(url, connections, seconds, count, out))
    process.start()
    result: tuple[float, list[float], int] = out.get(timeout=seconds + 120)
    process.join()
    return result


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _report(label: str, elapsed: float, latencies: list[float], failures: int) -> None:
    ms = [v * 1000 for v in latencies]
    print(
        f"{label}: {len(latencies)} runs accepted (202) in {elapsed:.2f} s"
        f" = {len(latencies) / elapsed:.0f} runs/s; other answers {failures}"
    )
    print(
        f"  latency ms: p50 {_percentile(ms, 50):.2f}  p95 {_percentile(ms, 95):.2f}"
        f"  p99 {_percentile(ms, 99):.2f}  max {max(ms):.2f}  mean {statistics.fmean(ms):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--serial", type=int, default=300, help="requests of the lone caller")
    args = parser.parse_args()
    sandbox_cfg = SandboxConfig(port=0, time_scale=60, api_key=KEY, limits=False, render=False)
    with tempfile.TemporaryDirectory() as tmp, Sandbox(sandbox_cfg) as sandbox:
        config = ServiceConfig(
            token=TOKEN,
            store=str(Path(tmp) / "runs.sqlite3"),
            endpoints={"luma": Endpoint(sandbox.luma_url, KEY, sandbox=True)},
            sandbox_id=sandbox.base_url,
            limits=None,  # the sandbox's limits are off: this measures the service
            time_scale=60,
        )
        with serve_in_thread(config) as (_, url):
            print(f"serve {url} in front of the sandbox {sandbox.luma_url} (limits off)")
            serial = _measure(url, 1, 120.0, args.serial)
            _report("one caller, one request at a time", *serial)
            time.sleep(1.0)  # let the background creates drain
            loaded = _measure(url, args.connections, args.seconds, 10**9)
            _report(f"{args.connections} connections for {args.seconds:g} s", *loaded)
            time.sleep(1.0)
            accepted = 2 + len(serial[1]) + len(loaded[1])
            print(
                f"generations made by the sandbox: {len(sandbox.generations())}"
                f" (runs accepted {accepted}, warm-ups included)"
            )


if __name__ == "__main__":
    main()
