"""One worker process on a shared key, for tests/engine: `python limits_worker.py MODE URL KEY`.

`load`: takes COUNT slots through `RedisLimiter` with its own connection, holding each for
HOLD seconds, and prints JSON lines `{"granted": t, "running": n}` (n: the shared count of
holders after it took the slot, kept in Redis by the workers themselves). `hold`: takes one
slot, prints "held" and sleeps until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import redis

from dreamnodes.api.limits import Limits
from dreamnodes.engine.redis_limits import RedisLimiter

LIMITS = Limits(video_concurrent=3, video_per_minute=6, window_seconds=0.5)
COUNT = 12
HOLD = 0.05


async def load(url: str, key: str) -> None:
    client = redis.Redis.from_url(url)
    limiter = RedisLimiter(client, key, "http://api", LIMITS)
    counter = f"test:{key}:running"

    async def one() -> None:
        slot = await limiter.acquire("video")
        running = client.incr(counter)
        print(json.dumps({"granted": time.time(), "running": running}), flush=True)
        await asyncio.sleep(HOLD)
        client.decr(counter)
        slot.release()

    await asyncio.gather(*(one() for _ in range(COUNT)))


async def hold(url: str, key: str) -> None:
    limiter = RedisLimiter(redis.Redis.from_url(url), key, "http://api", LIMITS, lease=0.5)
    await limiter.acquire("video")
    print("held", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    mode, url, key = sys.argv[1:4]
    asyncio.run(load(url, key) if mode == "load" else hold(url, key))
