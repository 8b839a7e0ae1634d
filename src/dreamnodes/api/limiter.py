"""The limiter interface: what a runner needs from whatever keeps a key within its limits.

Two implementations: the in-process `Scheduler` (`api.scheduler`, the default: one per key and
base URL per process) and a shared one in Redis (`dreamnodes.engine.redis_limits`), held by
every worker of every machine on the key. A runner is given a `LimiterFactory`; without one it
uses `in_process`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from dreamnodes.api.limits import Limits
from dreamnodes.api.scheduler import Scheduler

__all__ = ["Limiter", "LimiterFactory", "Pace", "Slot", "in_process"]


class Slot(Protocol):
    """The right to send one create: a running slot and an entry in the sliding window.

    `answered()` when the create was answered (its window entry counts from then),
    `refused()` on a 429 (entry and slot given back), `release()` when the generation ended or
    the create finally failed. Each is idempotent after release or refusal.
    """

    family: str
    waited: bool  # the create waited for a running slot (its account is saturated)

    @property
    def released(self) -> bool: ...

    def answered(self) -> None: ...

    def refused(self) -> None: ...

    def release(self) -> None: ...


class Pace(Protocol):
    """What a limiter knows of its running slots: how fast to look at a generation
    (`execution.waiting.busy_delay`)."""

    def saturated(self, family: str) -> bool:
        """Whether a create waits (or waited in the last 2 s) for a running slot."""
        ...

    def shortest(self, family: str) -> float:
        """The shortest generation of the family seen lately, in seconds (0 when none was)."""
        ...

    def ran(self, family: str, seconds: float) -> None:
        """A generation of the family was seen completed `seconds` after its create's answer."""
        ...


class Limiter(Pace, Protocol):
    """Keeps one API key's creates within its limits (running cap, creates per window)."""

    limits: Limits

    async def acquire(self, family: str) -> Slot:
        """Wait until a running slot is free and a create fits the window."""
        ...

    def rate_limited(self, family: str, retry_after: float | None) -> None:
        """Learn from a 429: no new create of the family for a while, for everyone."""
        ...

    def learn(self, family: str, headers: Mapping[str, str]) -> None:
        """Learn from a create's answer headers (X-RateLimit-*)."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """Per family: running, sent_in_window, waiting, held_seconds and the limits."""
        ...


LimiterFactory = Callable[[str, str, Limits], Limiter]
"""(api_key, base_url, limits) -> the limiter of that key and base URL."""


def in_process(api_key: str, base_url: str, limits: Limits) -> Limiter:
    """Today's limiter: the process-wide `Scheduler` of this key and base URL."""
    return Scheduler.shared(api_key, base_url, limits)
