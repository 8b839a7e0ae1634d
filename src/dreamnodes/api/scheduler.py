"""Keeping one API key within its limits: a running cap held until each generation ends, and a
sliding window of creates counted from when each was answered; learns from 429s.

One scheduler per key and base URL per process (`Scheduler.shared`): creates wait their turn
in order, and a released slot or an expiring window entry lets the next one go at once.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dreamnodes.api.limits import DURATIONS_KEPT, FAMILIES, Limits, _check_family


@dataclass(eq=False)
class _Family:
    """The live state of one family: running count, create times in the window, the queue."""

    running: int = 0
    sent: deque[float] = field(default_factory=deque)  # loop.time() of each create, ascending
    waiters: deque[asyncio.Future[Ticket]] = field(default_factory=deque)
    hold_until: float = 0.0  # no new create before this (learnt from a 429)
    streak: int = 0  # 429s in a row without a create going through, for the backoff guess
    timer: asyncio.TimerHandle | None = None
    timer_at: float = 0.0
    learned_per_window: int | None = None  # the service's own figure (X-RateLimit-Limit)
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=DURATIONS_KEPT))
    capped: bool = False  # the waiters met a full running cap (cleared when none is left)


class Ticket:
    """The right to send one create: a running slot and an entry in the sliding window
    (`api.limiter.Slot` says when to call what)."""

    __slots__ = ("_done", "_refused", "_scheduler", "family", "sent_at", "waited")

    def __init__(self, scheduler: Scheduler, family: str, sent_at: float, waited: bool) -> None:
        self._scheduler = scheduler
        self.family = family
        self.sent_at = sent_at
        self.waited = waited  # for a running slot
        self._done = False
        self._refused = False

    def __repr__(self) -> str:
        state = "refused" if self._refused else "released" if self._done else "running"
        return f"Ticket({self.family}, {state})"

    @property
    def released(self) -> bool:
        return self._done

    def refused(self) -> None:
        """The create got a 429: it does not count in the window, and its slot is freed."""
        if self._done:
            return
        self._done = True
        self._refused = True
        self._scheduler._finish(self, refused=True)

    def answered(self) -> None:
        """The create was answered: its window entry counts from now, not from the acquire.
        The service counts a create somewhere between our send and its answer (later still
        after retries): counting from the answer never ends the entry before the service's."""
        if not self._done:
            self.sent_at = self._scheduler._restamp(self.family, self.sent_at)

    def release(self) -> None:
        """The generation ended or the create finally failed: free the slot. Idempotent."""
        if self._done:
            return
        self._done = True
        self._scheduler._finish(self, refused=False)


class Scheduler:
    """Keeps one API key's creates within its limits; one per key and base URL per process."""

    _registry: ClassVar[dict[tuple[str, str], Scheduler]] = {}

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._families: dict[str, _Family] = {name: _Family() for name in FAMILIES}
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"Scheduler({self.limits!r})"

    @classmethod
    def shared(cls, api_key: str, base_url: str, limits: Limits | None = None) -> Scheduler:
        """The process-wide scheduler of this key and base URL (only a hash of the key is kept).

        Given `limits` replace those of an existing scheduler (a tier change takes effect for
        the next creates); without, an existing scheduler keeps its own.
        """
        key = (hashlib.sha256(api_key.encode()).hexdigest(), base_url.rstrip("/"))
        scheduler = cls._registry.get(key)
        if scheduler is None:
            scheduler = cls._registry[key] = cls(limits)
        elif limits is not None and limits != scheduler.limits:
            scheduler.limits = limits
            for name in FAMILIES:
                scheduler._pump(name)
        return scheduler

    async def acquire(self, family: str) -> Ticket:
        """Wait until a running slot is free and a create fits the window; first come first go."""
        _check_family(family)
        self._bind_loop()
        loop = asyncio.get_running_loop()
        state = self._families[family]
        waiter: asyncio.Future[Ticket] = loop.create_future()
        state.waiters.append(waiter)
        self._pump(family)
        try:
            return await waiter
        except BaseException:
            # Cancelled while waiting, or right after being granted: give the turn back.
            if waiter.done() and not waiter.cancelled():
                waiter.result().refused()
            else:
                waiter.cancel()
                if waiter in state.waiters:
                    state.waiters.remove(waiter)
                self._pump(family)
            raise

    def rate_limited(self, family: str, retry_after: float | None) -> None:
        """Learn from a 429: no new create of the family before `retry_after` seconds.

        Without a usable Retry-After the hold is a guess that doubles with each 429 in a row,
        from the even spacing of the window's creates up to a whole window.
        """
        _check_family(family)
        state = self._families[family]
        window = self.limits.window_seconds
        state.streak += 1
        if retry_after is not None and math.isfinite(retry_after) and retry_after >= 0:
            hold = min(retry_after, 2 * window)
        else:
            spacing = window / self._per_window(family)
            hold = min(spacing * 2 ** (state.streak - 1), window)
        now = self._now()
        state.hold_until = max(state.hold_until, now + hold)
        self._pump(family)

    def learn(self, family: str, headers: Mapping[str, str]) -> None:
        """Learn from a create's answer: `X-RateLimit-Limit` is the service's own per-minute
        figure (it replaces ours); `Remaining: 0` while our own window still has room means
        others use the key too, so no create goes before `X-RateLimit-Reset`."""
        _check_family(family)
        state = self._families[family]
        limit = _number(headers.get("x-ratelimit-limit"))
        if limit is not None and limit >= 1:
            state.learned_per_window = int(limit)
        remaining = _number(headers.get("x-ratelimit-remaining"))
        reset = _number(headers.get("x-ratelimit-reset"))
        now = self._now()
        self._expire(family, now)
        if remaining == 0 and reset is not None and len(state.sent) < self._per_window(family):
            hold = min(max(0.0, reset - time.time()), self.limits.window_seconds)
            state.hold_until = max(state.hold_until, now + hold)
        self._pump(family)

    def _per_window(self, family: str) -> int:
        learned = self._families[family].learned_per_window
        return learned if learned is not None else self.limits.per_window(family)

    def snapshot(self) -> dict[str, Any]:
        """Per family: running, creates in the window, tasks waiting, seconds still held."""
        now = self._now()
        out: dict[str, Any] = {}
        for name, state in self._families.items():
            self._expire(name, now)
            out[name] = {
                "running": state.running,
                "sent_in_window": len(state.sent),
                "waiting": sum(1 for w in state.waiters if not w.done()),
                "held_seconds": max(0.0, state.hold_until - now),
                "concurrent_limit": self.limits.concurrent(name),
                "per_window_limit": self._per_window(name),
            }
        return out

    def saturated(self, family: str) -> bool:
        """Whether a create waits for a running slot now."""
        state = self._families[family]
        full = state.running >= self.limits.concurrent(family)
        return full and not all(w.done() for w in state.waiters)

    def shortest(self, family: str) -> float:
        return min(self._families[family].durations, default=0.0)

    def ran(self, family: str, seconds: float) -> None:
        self._families[family].durations.append(seconds)

    # -- inside --------------------------------------------------------------------------

    def _now(self) -> float:
        # The loop's clock (monotonic), so that timers and window entries agree.
        if self._loop is not None and not self._loop.is_closed():
            return self._loop.time()
        return time.monotonic()  # what asyncio's loops use

    def _bind_loop(self) -> None:
        """Follow the running loop; waiters and timers of a finished loop are dropped."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        for state in self._families.values():
            state.waiters.clear()
            state.timer = None

    def _expire(self, family: str, now: float) -> None:
        state = self._families[family]
        window = self.limits.window_seconds
        while state.sent and state.sent[0] + window <= now:
            state.sent.popleft()

    def _restamp(self, family: str, sent_at: float) -> float:
        state = self._families[family]
        now = self._now()
        with contextlib.suppress(ValueError):  # already out of the window: count it again
            state.sent.remove(sent_at)
        bisect.insort(state.sent, now)
        return now

    def _finish(self, ticket: Ticket, *, refused: bool) -> None:
        state = self._families[ticket.family]
        state.running = max(0, state.running - 1)
        if refused:
            with contextlib.suppress(ValueError):  # already out of the window
                state.sent.remove(ticket.sent_at)
        else:
            state.streak = 0
        if self._loop is not None and not self._loop.is_closed():
            self._pump(ticket.family)

    def _pump(self, family: str) -> None:
        """Grant tickets to waiters in order while they fit; else wake up when one would."""
        state = self._families[family]
        if self._loop is None or self._loop.is_closed():
            return
        limits = self.limits
        while state.waiters:
            head = state.waiters[0]
            if head.done():  # cancelled
                state.waiters.popleft()
                continue
            if state.running >= limits.concurrent(family):
                state.capped = True
                return  # a release pumps again
            now = self._loop.time()
            self._expire(family, now)
            wake_at = state.hold_until if now < state.hold_until else 0.0
            if len(state.sent) >= self._per_window(family):
                wake_at = max(wake_at, state.sent[0] + limits.window_seconds)
            if wake_at > now:
                self._wake_at(family, wake_at)
                return
            state.waiters.popleft()
            state.running += 1
            state.sent.append(now)
            head.set_result(Ticket(self, family, now, state.capped))
        state.capped = False  # every waiter was served

    def _wake_at(self, family: str, when: float) -> None:
        state = self._families[family]
        if state.timer is not None:
            if state.timer_at == when:
                return
            state.timer.cancel()
        assert self._loop is not None
        state.timer_at = when
        state.timer = self._loop.call_at(when, self._on_timer, family)

    def _on_timer(self, family: str) -> None:
        self._families[family].timer = None
        self._pump(family)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
