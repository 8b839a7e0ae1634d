"""Requests per second for GET /generations/{id} on the sandbox.

Runs the sandbox in-process (its own thread and event loop) and a separate client process
holding several keep-alive connections for about 5 s. That Python client is itself the
bottleneck on 2 cores; where `wrk` is installed (Debian: apt-get install wrk) the same URL is
also measured with it, which shows what the server can do. The sandbox is a Starlette app on
uvicorn (httptools) on a plain asyncio loop; `--uvloop` runs it on uvloop instead, where that
is installed (it is not a dependency). Usage:
    python bench/sandbox_rps.py [--connections 8] [--seconds 5] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import shutil
import subprocess
import time

import httpx

from dreamnodes.sandbox import Sandbox, SandboxConfig


async def _hammer(url: str, connections: int, seconds: float) -> int:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": "Bearer bench"}
    done = 0
    async with httpx.AsyncClient(limits=limits, headers=headers) as client:
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                response = await client.get(url)
                assert response.status_code == 200
                done += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    return done


def _client(url: str, connections: int, seconds: float, out: multiprocessing.Queue[int]) -> None:
    out.put(asyncio.run(_hammer(url, connections, seconds)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument("--uvloop", action="store_true", help="serve on uvloop (if installed)")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop  # not a dependency: pip install uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    with Sandbox(SandboxConfig(render=False, limits=False)) as sandbox:
        created = httpx.post(
            sandbox.luma_url + "/generations",
            json={"model": "ray-2", "prompt": "benchmark clip"},
            headers={"Authorization": "Bearer bench"},
        ).json()
        url = f"{sandbox.luma_url}/generations/{created['id']}"
        queue: multiprocessing.Queue[int] = multiprocessing.Queue()
        procs = [
            multiprocessing.Process(
                target=_client, args=(url, args.connections, args.seconds, queue)
            )
            for _ in range(args.processes)
        ]
        for proc in procs:
            proc.start()
        total = sum(queue.get() for _ in procs)
        for proc in procs:
            proc.join()
        wrk = _wrk(url, args.connections, args.seconds)
    rps = total / args.seconds
    print(
        f"GET /generations/{{id}}: {rps:.0f} requests/s "
        f"({total} in {args.seconds:.0f} s, {args.processes}x{args.connections} connections,"
        " Python client)"
    )
    if wrk is not None:
        print(
            f"GET /generations/{{id}}: {wrk:.0f} requests/s (wrk, {args.connections} connections)"
        )


def _wrk(url: str, connections: int, seconds: float) -> float | None:
    """Requests per second as wrk measures them, or None without wrk."""
    if shutil.which("wrk") is None:
        return None
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "-H",
            "Authorization: Bearer bench",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    return float(found.group(1)) if found else None


if __name__ == "__main__":
    main()
