"""The shared limiter: one API key's limits kept in Redis for every worker on every machine.

A create takes a running slot (a token in a sorted set scored by its lease's end, renewed by a
daemon thread while the slot is held, so a dead worker's slots expire after one lease) and an
entry in the sliding window (a sorted set scored by when it was counted); a 429 or a
`Remaining: 0` sets a hold every process reads. Each step is one Lua script (`scripts`), so
two workers never both take the last slot. Waiting is local: one task per family and process
asks Redis at a time (first come first go inside a process), sleeping until the window or hold
says, or until a release (here, or anywhere through the limits' channel: `wakeups`).

About 340 lines on purpose: the limiter, its slot and the factory share one keyspace and one
lock, and read best together (the Limiter protocol alone is a dozen methods); the Lua lives in
`scripts`, the listening for freed slots in `wakeups`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import threading
import uuid
from collections.abc import Mapping
from typing import Any

import redis

from dreamnodes.api.limiter import Limiter
from dreamnodes.api.limits import DURATIONS_KEPT, FAMILIES, Limits, _check_family
from dreamnodes.engine import scripts
from dreamnodes.engine.wakeups import Wakeups

__all__ = ["RedisLimiter", "RedisLimiters", "RedisSlot"]

LEASE = 60.0  # seconds a slot outlives its holder (renewed every third of it while held)
POLL = 0.05  # seconds between looks at a full running cap (a release anywhere wakes sooner)
WANTED_MS = 2000  # how long a create waiting for a running slot is remembered


class RedisSlot:
    """One create's slot and window entry in Redis (see `api.limiter.Slot`)."""

    __slots__ = ("_done", "_limiter", "family", "token", "waited")

    def __init__(self, limiter: RedisLimiter, family: str, token: str, waited: bool) -> None:
        self._limiter = limiter
        self.family = family
        self.token = token
        self.waited = waited  # for a running slot
        self._done = False

    def __repr__(self) -> str:
        return f"RedisSlot({self.family}, {'released' if self._done else 'running'})"

    @property
    def released(self) -> bool:
        return self._done

    def answered(self) -> None:
        if not self._done:
            self._limiter._answered(self)

    def refused(self) -> None:
        if not self._done:
            self._done = True
            self._limiter._finish(self, refused=True)

    def release(self) -> None:
        if not self._done:
            self._done = True
            self._limiter._finish(self, refused=False)


class RedisLimiter:
    """The `Limiter` of one key and base URL, shared through Redis (one per process)."""

    def __init__(
        self,
        client: redis.Redis,
        api_key: str,
        base_url: str,
        limits: Limits | None = None,
        *,
        lease: float = LEASE,
        poll: float = POLL,
        ident: str | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.lease = lease
        self.poll = poll
        self._redis = client
        # Names the key and base URL without revealing the key (another process's handle on
        # the same limits is made from it: `RedisLimiters.by_id`).
        self.id = ident or limiter_id(api_key, base_url)
        self._prefix = f"dreamnodes:limits:{{{self.id}}}"
        self._acquire = client.register_script(scripts.ACQUIRE)
        self._answer = client.register_script(scripts.ANSWERED)
        self._release = client.register_script(scripts.RELEASE)
        self._refuse = client.register_script(scripts.REFUSED)
        self._renew = client.register_script(scripts.RENEW)
        self._limited = client.register_script(scripts.RATE_LIMITED)
        self._learn = client.register_script(scripts.LEARN)
        self._snapshot = client.register_script(scripts.SNAPSHOT)
        self._held: dict[str, set[str]] = {name: set() for name in FAMILIES}
        self._lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._turns: dict[str, asyncio.Lock] = {}
        self._freed: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = dict.fromkeys(FAMILIES, 0)
        self._wakeups = Wakeups(client, f"{self._prefix}:freed")

    def __repr__(self) -> str:
        return f"RedisLimiter({self.limits!r})"

    def keys(self, family: str) -> dict[str, str]:
        base = f"{self._prefix}:{family}"
        names = ("slots", "window", "hold", "streak", "learned", "wanted", "durations")
        return {name: f"{base}:{name}" for name in names}

    async def acquire(self, family: str) -> RedisSlot:
        """Wait until a slot is free and a create fits the window, for every process."""
        _check_family(family)
        self._bind_loop()
        k = self.keys(family)
        self._waiting[family] += 1
        waited = False
        try:
            async with self._turns[family]:  # one asker per family and process, in order
                while True:
                    token = uuid.uuid4().hex
                    granted, value = self._acquire(
                        keys=[k["slots"], k["window"], k["hold"], k["learned"]],
                        args=[
                            token,
                            self.limits.concurrent(family),
                            self.limits.per_window(family),
                            repr(self.limits.window_seconds),
                            repr(self.lease),
                        ],
                    )
                    if int(granted) == 1:
                        return self._granted(family, token, waited)
                    wait = float(value)
                    if wait < 0:  # the running cap is full: say a slot is wanted (for 2 s)
                        self._redis.set(k["wanted"], b"1", px=WANTED_MS)
                        self._wakeups.start(self._woken)  # a release anywhere wakes us
                        waited = True
                    freed = self._freed[family]
                    freed.clear()
                    delay = self.poll if wait < 0 else min(wait, self.limits.window_seconds)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(freed.wait(), timeout=max(delay, 0.001))
        finally:
            self._waiting[family] -= 1

    def rate_limited(self, family: str, retry_after: float | None) -> None:
        _check_family(family)
        k = self.keys(family)
        usable = retry_after is not None and math.isfinite(retry_after) and retry_after >= 0
        self._limited(
            keys=[k["hold"], k["streak"], k["learned"]],
            args=[
                repr(retry_after) if usable else "",
                repr(self.limits.window_seconds),
                self.limits.per_window(family),
            ],
        )

    def learn(self, family: str, headers: Mapping[str, str]) -> None:
        _check_family(family)
        k = self.keys(family)
        self._learn(
            keys=[k["hold"], k["window"], k["learned"]],
            args=[
                _number(headers.get("x-ratelimit-limit")),
                _number(headers.get("x-ratelimit-remaining")),
                _number(headers.get("x-ratelimit-reset")),
                repr(self.limits.window_seconds),
                self.limits.per_window(family),
            ],
        )

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in FAMILIES:
            k = self.keys(name)
            running, in_window, held, learned = self._snapshot(
                keys=[k["slots"], k["window"], k["hold"], k["learned"]],
                args=[repr(self.limits.window_seconds)],
            )
            out[name] = {
                "running": int(running),
                "sent_in_window": int(in_window),
                "waiting": self._waiting[name],
                "held_seconds": float(held),
                "concurrent_limit": self.limits.concurrent(name),
                "per_window_limit": int(learned) if learned else self.limits.per_window(name),
            }
        return out

    # -- a slot handed from process to process (the Celery engine) -------------------------

    def detach(self, slot: RedisSlot) -> str:
        """Stop renewing `slot` here: its holder is now whoever renews it by token."""
        with self._lock:
            self._held[slot.family].discard(slot.token)
        return slot.token

    def adopt(self, family: str, token: str) -> RedisSlot:
        """The slot `token` taken by another process, to answer or release from here."""
        _check_family(family)
        return RedisSlot(self, family, token, waited=False)

    def saturated(self, family: str) -> bool:
        """Whether a create somewhere waited for a running slot in the last 2 s."""
        return bool(self._redis.exists(self.keys(family)["wanted"]))

    def shortest(self, family: str) -> float:
        """The shortest generation any process saw lately (0 when none was)."""
        seen = self._redis.lrange(self.keys(family)["durations"], 0, -1)
        return min((float(s) for s in seen), default=0.0)

    def ran(self, family: str, seconds: float) -> None:
        k = self.keys(family)["durations"]
        pipe = self._redis.pipeline(transaction=False)
        pipe.lpush(k, repr(seconds))
        pipe.ltrim(k, 0, DURATIONS_KEPT - 1)
        pipe.execute()

    def renew(self, family: str, token: str) -> None:
        """Push the lease of a slot held by token (a no-op once it is released)."""
        self._renew(keys=[self.keys(family)["slots"]], args=[repr(self.lease), token])

    def close(self) -> None:
        """Stop renewing (slots still held expire after one lease) and listening."""
        self._stop.set()
        self._wakeups.close()

    # -- inside --------------------------------------------------------------------------

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._turns = {name: asyncio.Lock() for name in FAMILIES}
            self._freed = {name: asyncio.Event() for name in FAMILIES}

    def _granted(self, family: str, token: str, waited: bool) -> RedisSlot:
        with self._lock:
            self._held[family].add(token)
            if self._renewer is None or not self._renewer.is_alive():
                self._stop.clear()
                self._renewer = threading.Thread(
                    target=self._renew_while_held, name="dreamnodes-lease", daemon=True
                )
                self._renewer.start()
        return RedisSlot(self, family, token, waited)

    def _answered(self, slot: RedisSlot) -> None:
        k = self.keys(slot.family)
        self._answer(keys=[k["window"]], args=[slot.token, repr(self.limits.window_seconds)])

    def _finish(self, slot: RedisSlot, *, refused: bool) -> None:
        with self._lock:
            self._held[slot.family].discard(slot.token)
        k = self.keys(slot.family)
        if refused:
            keys = [k["slots"], k["window"], self._wakeups.channel]
            self._refuse(keys=keys, args=[slot.token, slot.family])
        else:
            keys = [k["slots"], k["streak"], self._wakeups.channel]
            self._release(keys=keys, args=[slot.token, slot.family])
        self._woken(slot.family)

    def _woken(self, family: str) -> None:
        loop, freed = self._loop, self._freed.get(family)
        if loop is not None and freed is not None and not loop.is_closed():
            loop.call_soon_threadsafe(freed.set)

    def _renew_while_held(self) -> None:
        while not self._stop.wait(self.lease / 3):
            with self._lock:
                held = {family: list(tokens) for family, tokens in self._held.items() if tokens}
            for family, tokens in held.items():
                try:
                    self._renew(keys=[self.keys(family)["slots"]], args=[repr(self.lease), *tokens])
                except redis.RedisError:
                    continue  # Redis away for a moment: the next round renews


class RedisLimiters:
    """A `LimiterFactory` on one Redis: one `RedisLimiter` per key and base URL per process."""

    def __init__(self, url: str, *, lease: float = LEASE, poll: float = POLL) -> None:
        self.url = url
        self._client = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
        self._lease, self._poll = lease, poll
        self._made: dict[str, RedisLimiter] = {}
        self._by_id: dict[str, RedisLimiter] = {}

    def __repr__(self) -> str:
        return "RedisLimiters(...)"  # the URL may carry a password

    def __call__(self, api_key: str, base_url: str, limits: Limits) -> Limiter:
        key = hashlib.sha256(f"{api_key}\0{base_url.rstrip('/')}".encode()).hexdigest()
        limiter = self._made.get(key)
        if limiter is None:
            limiter = RedisLimiter(
                self._client, api_key, base_url, limits, lease=self._lease, poll=self._poll
            )
            self._made[key] = limiter
        else:
            limiter.limits = limits
        return limiter

    def by_id(self, ident: str) -> RedisLimiter:
        """The limits of another process's limiter (`RedisLimiter.id`), to hand slots on."""
        limiter = self._by_id.get(ident)
        if limiter is None:
            limiter = RedisLimiter(self._client, "", "", lease=self._lease, ident=ident)
            self._by_id[ident] = limiter
        return limiter

    def close(self) -> None:
        for limiter in self._made.values():
            limiter.close()
        self._client.close()


def limiter_id(api_key: str, base_url: str) -> str:
    """A key and base URL's limits, named by a hash (never the key itself)."""
    return hashlib.sha256(f"{api_key}\0{base_url.rstrip('/')}".encode()).hexdigest()[:24]


def _number(text: str | None) -> str:
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return ""
    return repr(value) if math.isfinite(value) else ""
