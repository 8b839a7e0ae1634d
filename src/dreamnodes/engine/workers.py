"""The engine seen from `serve`: which workers live, what they run, how deep the queue is.

Each worker process writes a line to one Redis hash every two seconds while it lives (its
owner name, when it was last seen, the steps it runs now, the steps it finished); the broker's
own lists give the queue's depth and how many tasks workers hold unacknowledged (running, or
waiting for their countdown).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis

from dreamnodes.runlog.owner import alive, parse, this_owner

__all__ = ["Registry", "alive_workers", "engine_status"]

_HASH = "dreamnodes:engine:workers"
SEEN_EVERY = 2.0  # seconds between a live worker's lines
_GONE_AFTER = 60.0  # a worker not seen for this long leaves the list
_SEP = "\x06\x16"  # kombu's separator of a queue's priority lists


class Registry:
    """This worker process's line in the list of workers."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._me = this_owner()
        self._done = 0
        self._started = time.time()
        self.seen(0)

    def done(self) -> None:
        self._done += 1

    def seen(self, running: int) -> None:
        line = {
            "seen": time.time(),
            "running": running,
            "done": self._done,
            "started": self._started,
            "pid": os.getpid(),
        }
        self._redis.hset(_HASH, self._me, json.dumps(line))


def alive_workers(client: redis.Redis) -> int:
    """How many worker processes are alive now (seen lately, or their pid lives here)."""
    now = time.time()
    count = 0
    for name, text in client.hgetall(_HASH).items():
        owner = name.decode() if isinstance(name, bytes) else str(name)
        if alive(owner, float(json.loads(text)["seen"]) + 3 * SEEN_EVERY, now):
            count += 1
    return count


def engine_status(client: redis.Redis, queue: str, steps: int) -> dict[str, Any]:
    """Workers (alive or not, what they run), the queue's depth, and the runs under way."""
    now = time.time()
    workers = []
    for name, text in client.hgetall(_HASH).items():
        owner = name.decode() if isinstance(name, bytes) else str(name)
        line = json.loads(text)
        age = now - float(line["seen"])
        if age > _GONE_AFTER:
            client.hdel(_HASH, owner)
            continue
        parts = parse(owner)
        workers.append(
            {
                "name": owner,
                "host": parts[0] if parts else None,
                "pid": line.get("pid"),
                "alive": alive(owner, float(line["seen"]) + 3 * SEEN_EVERY, now),
                "seen_seconds_ago": round(age, 1),
                "running": line.get("running", 0),
                "done": line.get("done", 0),
            }
        )
    workers.sort(key=lambda w: str(w["name"]))
    lists = [queue, *(f"{queue}{_SEP}{p}" for p in (3, 6, 9))]
    queued = sum(int(client.llen(name)) for name in lists)
    return {
        "engine": "celery",
        "workers": workers,
        "alive": sum(1 for w in workers if w["alive"]),
        "queue": {
            "name": queue,
            "queued": queued,
            "unacknowledged": int(client.hlen("unacked")),
        },
        "runs_under_way": steps,
    }
