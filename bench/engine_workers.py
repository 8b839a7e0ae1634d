"""The Celery engine: batches on 1, 2 and 4 `dreamnodes worker` processes, and the issue's check.

Every process is real: a `redis-server` of its own, `serve --engine celery` and the workers
(`--concurrency 8`, threads), one run log (`tests/engine/cluster.py` starts them): a SQLite
file, or for `acceptance --store postgresql` a PostgreSQL of its own (`tests/servers.py`).

`limits` (the default): a COUNT-item batch (1,000) against a sandbox at the Build tier's limits
(20 video creates a minute, 10 running), everything on a clock TIME_SCALE times faster (the
sandbox's durations and minute; serve's `--time-scale`: its limits' minute, the polls, the
retry waits), on 1, 2 and 4 workers, then the same with one worker SIGKILLed when half the
items are done (with one worker, a new one is started at once in its place); first, for
reference, `serve` alone (`--engine embedded`, no workers) on the same batch. The sandbox runs
in this process without rendering (as `serve_batch.py`), so its request log gives the 429s and
its store the generations; the minimum is `_loop_common`'s formula for the same limits.

`acceptance`: issue 13's check: 200 items, 3 workers, the fake Luma with a 10-running cap
(429 beyond; generations dream DURATION s), one worker SIGKILLed halfway; then the same
Idempotency-Key posted again. Before it, for reference, the same batch on `serve` alone and
on the 3 workers without a SIGKILL. Serve's limits: 10 running, the minute not binding, on the
real clock (`--acceptance-scale` to change it). The minimum is ceil(200/10) waves of DURATION.
Each setup also prints where a slot's time goes: how late each end was seen, how long until
the next create took its slot, the looks per generation, and the time before the first create.

The makespan runs from the POST to the batch read as ended (read every 0.1 s).
Usage:
    python bench/engine_workers.py [limits|acceptance|all] [--count N] [--time-scale X]
        [--duration S] [--acceptance-scale X] [--store sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _loop_common import theoretical_minimum

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from engine.cluster import (
    BATCHES,
    Cluster,
    RedisServer,
    start_fake,
    start_redis,
)
from servers import start_postgres

from dreamnodes.sandbox import Sandbox, SandboxConfig

WORKER_ARGS = ("--concurrency", "8")


@dataclass
class Outcome:
    makespan: float
    posted: float  # wall clock (the fake's timings are too): the POST, and the batch read ended
    read_ended: float
    batch: dict[str, Any]
    killed_at: float | None  # seconds after the POST
    prompts_in_order: bool
    body: dict[str, Any]
    key: dict[str, str]  # the Idempotency-Key header it was posted with


def run_batch(cluster: Cluster, prompts: list[str], *, kill: bool, replace: bool) -> Outcome:
    """POST one batch; SIGKILL a worker when half its items are done (and start a new one if
    `replace`); the makespan from the POST to the batch read as ended."""
    body = {"params": {"prompt": "{{item}}", "model": "ray-2"}, "items": prompts, "wait": "poll"}
    key = {"Idempotency-Key": "bench-" + uuid.uuid4().hex}
    started, posted = time.monotonic(), time.time()
    answer = cluster.client.post(BATCHES, json=body, headers=key)
    assert answer.status_code == 202, answer.text
    batch_id = answer.json()["id"]
    killed_at: float | None = None

    def halfway(view: dict[str, Any]) -> None:
        nonlocal killed_at
        if kill and killed_at is None and view["done"] >= len(prompts) // 2:
            cluster.kill(cluster.live()[0])
            killed_at = time.monotonic() - started
            if replace:
                cluster.start_worker()

    deadline = 1800.0
    while True:
        view = cluster.batch(batch_id)
        halfway(view)
        if view["status"] != "running":
            break
        assert time.monotonic() - started < deadline, "the batch did not end in time"
        time.sleep(0.1)
    makespan = time.monotonic() - started
    got = [(i.get("output") or {}).get("request", {}).get("prompt") for i in view["items"]]
    return Outcome(makespan, posted, time.time(), view, killed_at, got == prompts, body, key)


def _errors(batch: dict[str, Any]) -> str:
    found = Counter(
        (i["error"]["code"], i["error"]["message"][:90]) for i in batch["items"] if i.get("error")
    )
    return "".join(f"\n    error x{n}: {code}: {text}" for (code, text), n in found.most_common(3))


# -- limits: 1, 2, 4 workers against the sandbox at the Build tier --------------------------------


def limits(redis: RedisServer, count: int, scale: float, folder: Path) -> None:
    cfg = SandboxConfig(port=0, time_scale=scale, render=False, credits_cents=1e9)
    best, formula = theoretical_minimum(count, cfg)
    print(f"== limits: {count} items, sandbox at the Build tier, time scale {scale:g}")
    print(f"theoretical minimum {best:.2f} s: {formula}")
    print(
        f"{'workers':>7} {'SIGKILL':>8} {'makespan s':>10} {'ratio':>6} {'429s':>5}"
        f" {'generations':>11} {'succeeded':>9} {'in order':>8} {'killed at s':>11}"
    )
    prompts = [f"a paper boat number {i} on a river" for i in range(count)]
    # 0 workers: serve without the engine (`--engine embedded`), the reference.
    for workers, kill in [(0, False), *((w, k) for k in (False, True) for w in (1, 2, 4))]:
        name = f"limits-{workers}{'-kill' if kill else ''}"
        _flush(redis.url)
        with Sandbox(cfg) as sandbox:
            cluster = Cluster(
                folder / name,
                redis.url,
                sandbox.luma_url,
                serve_args=("--time-scale", f"{scale:g}", "--max-batch", str(count)),
                worker_args=WORKER_ARGS,
                mode="celery" if workers else "embedded",
            )
            try:
                cluster.start(workers)
                out = run_batch(cluster, prompts, kill=kill, replace=workers == 1)
            finally:
                cluster.close()
            log = sandbox.request_log()
            generations = len(sandbox.generations())
        refused = sum(1 for method, _, status in log if method == "POST" and status == 429)
        batch = out.batch
        killed = "-" if out.killed_at is None else f"{out.killed_at:.1f}"
        how = ("yes, new" if workers == 1 else "yes") if kill else "no"
        print(
            f"{workers or 'serve':>7} {how:>8} {out.makespan:>10.2f} {out.makespan / best:>6.2f}"
            f" {refused:>5} {generations:>11} {batch['succeeded']:>9}"
            f" {out.prompts_in_order!s:>8} {killed:>11}" + _errors(batch),
            flush=True,
        )


# -- acceptance: issue 13's check ----------------------------------------------------------------


def acceptance(redis: RedisServer, folder: Path, duration: float, scale: float, pg: bool) -> None:
    count, cap, workers = 200, 10, 3
    if not pg:
        _acceptance(redis, folder, duration, scale, "", count, cap, workers)
        return
    # The run log in a PostgreSQL of its own (a database for each setup), in a folder of /tmp
    # the `postgres` user can reach.
    with tempfile.TemporaryDirectory(prefix="dreamnodes-pg-") as tmp:
        os.chmod(tmp, 0o755)
        server, stop_postgres = start_postgres(tmp)
        try:
            _acceptance(redis, folder, duration, scale, server, count, cap, workers)
        finally:
            stop_postgres()


def _acceptance(
    redis: RedisServer,
    folder: Path,
    duration: float,
    scale: float,
    server: str,
    count: int,
    cap: int,
    workers: int,
) -> None:
    best = math.ceil(count / cap) * duration
    print(
        f"== acceptance: {count} items, {workers} workers, the fake Luma capped at {cap} running"
        f" (generations dream {duration:g} s), one worker SIGKILLed halfway"
    )
    print(f"theoretical minimum {best:.2f} s: T = ceil(M/C)*D, M={count} C={cap} D={duration:g}s")
    prompts = [f"a paper boat number {i} on a river" for i in range(count)]
    # First serve alone (`--engine embedded`, the reference), then the engine, then a SIGKILL.
    for engine, kill in (("embedded", False), ("celery", False), ("celery", True)):
        _flush(redis.url)
        fake = start_fake(folder)
        fake.control(running_cap=cap, duration=duration)
        serve = ("--time-scale", f"{scale:g}", "--video-concurrent", str(cap))
        store = _database(server, f"acceptance_{engine}{'_kill' if kill else ''}") if server else ""
        cluster = Cluster(
            folder / f"acceptance-{engine}{'-kill' if kill else ''}",
            redis.url,
            fake.base,
            serve_args=(*serve, "--video-per-minute", "1000000"),
            worker_args=WORKER_ARGS,
            mode=engine,
            store_url=store,
        )
        try:
            cluster.start(workers if engine == "celery" else 0)
            out = run_batch(cluster, prompts, kill=kill, replace=False)
            stats = fake.stats()
            again = cluster.client.post(BATCHES, json=out.body, headers=out.key)
            time.sleep(2.0)  # a replay that had started runs would have sent creates by now
            after = fake.stats()
        finally:
            cluster.close()
            fake.stop()
        batch = out.batch
        killed = f"a worker SIGKILLed at {out.killed_at or 0:.1f} s" if kill else "no SIGKILL"
        if engine == "embedded":
            killed = "serve alone (--engine embedded)"
        else:
            killed = f"{workers} workers, {killed}"
        print(
            f"-- {killed}: batch {batch['status']}, succeeded {batch['succeeded']},"
            f" failed {batch['failed']}, results in order {out.prompts_in_order}" + _errors(batch)
        )
        print(f"   makespan {out.makespan:.2f} s, ratio {out.makespan / best:.2f}")
        print(
            f"   generations {len(stats['generations'])}, creates {stats['creates']},"
            f" 429s received {stats['refused_429']}"
        )
        print("   " + _overheads(stats["timings"], cap, out))
        same = again.json().get("id") == batch["id"]
        print(
            f"   replay (same Idempotency-Key): HTTP {again.status_code}, same batch {same},"
            f" Idempotent-Replayed {again.headers.get('idempotent-replayed')},"
            f" status {again.json().get('status')}; creates after it"
            f" {after['creates'] - stats['creates']}",
            flush=True,
        )


def _overheads(timings: list[dict[str, Any]], cap: int, out: Outcome) -> str:
    """Where a slot's time goes between generations, from the fake's clock: from a generation's
    end to the look that saw it, and from that look to the create that took its slot (the
    k-th create after the first `cap` pairs with the k-th end seen); and at both ends of the
    batch, from the POST to the first create, from the last end seen to the batch read ended."""
    seen = sorted(t["seen"] for t in timings if t["seen"] is not None)
    first = min(t["created"] for t in timings) - out.posted
    last = out.read_ended - max(seen, default=out.read_ended)
    late = [t["seen"] - t["done_at"] for t in timings if t["seen"] is not None]
    created = sorted(t["created"] for t in timings)[cap:]
    hops = [c - s for c, s in zip(created, seen, strict=False) if c >= s]
    gets = sum(t["gets"] or 0 for t in timings) / max(1, len(timings))
    return (
        f"per generation: end seen {_ms(late)} late, next create {_ms(hops)} later,"
        f" {gets:.1f} looks; first create {1000 * first:.0f} ms after the POST, the batch"
        f" read ended {1000 * last:.0f} ms after the last end"
    )


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    mean, median = sum(values) / len(values), ordered[len(values) // 2]
    p90 = ordered[-len(values) // 10]
    return f"{1000 * mean:.0f} ms (median {1000 * median:.0f}, p90 {1000 * p90:.0f})"


def _database(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + "/" + name


def _flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("mode", nargs="?", choices=("limits", "acceptance", "all"), default="all")
    parser.add_argument("--count", type=int, default=1000, help="limits: items (default 1000)")
    parser.add_argument("--time-scale", type=float, default=60.0, help="limits (default 60)")
    parser.add_argument("--duration", type=float, default=1.0, help="acceptance: dream seconds")
    parser.add_argument(
        "--acceptance-scale", type=float, default=1.0, help="acceptance: serve's --time-scale"
    )
    parser.add_argument(
        "--store", choices=("sqlite", "postgresql"), default="sqlite", help="acceptance: run log"
    )
    args = parser.parse_args()
    redis = start_redis()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if args.mode in ("acceptance", "all"):
                pg = args.store == "postgresql"
                acceptance(redis, Path(tmp), args.duration, args.acceptance_scale, pg)
            if args.mode in ("limits", "all"):
                limits(redis, args.count, args.time_scale, Path(tmp))
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
