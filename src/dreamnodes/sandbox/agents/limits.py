"""The two limits on POST /generations, per API client: requests per minute over a sliding
window, and concurrent unfinished jobs (dropped from the count after an hour). Both must pass;
a refusal is a 429, never a queue. Headers and bodies as Luma documents them (AGENTS_API.md 4).

Only accepted creates are counted in the window (the sandbox's reading; Luma does not say).
Windows are service seconds divided by the time scale; `X-RateLimit-Reset` is Unix time.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

from dreamnodes.sandbox.errors import ApiError


@dataclass
class _Client:
    stamps: deque[float] = field(default_factory=deque)  # monotonic times of accepted creates
    active: dict[str, float] = field(default_factory=dict)  # job id -> when it stops counting


class AgentLimits:
    def __init__(
        self, enabled: bool, per_minute: int, concurrent: int, window: float, stale_after: float
    ) -> None:
        self.enabled = enabled
        self.per_minute = per_minute
        self.concurrent = concurrent
        self.window = window  # 60 service seconds, in wall-clock seconds
        self.stale_after = stale_after  # one service hour
        self._clients: dict[str, _Client] = {}

    def _client(self, owner: str, now: float) -> _Client:
        client = self._clients.setdefault(owner, _Client())
        while client.stamps and client.stamps[0] <= now - self.window:
            client.stamps.popleft()
        for job_id, until in list(client.active.items()):
            if until <= now:
                del client.active[job_id]
        return client

    def _reset_at(self, seconds_from_now: float) -> str:
        return str(math.ceil(time.time() + seconds_from_now))

    def check(self, owner: str) -> None:
        """Raise the 429 a create would get now."""
        if not self.enabled:
            return
        now = time.monotonic()
        client = self._client(owner, now)
        if len(client.stamps) >= self.per_minute:
            wait = client.stamps[0] + self.window - now
            headers = {
                "x-ratelimit-limit": str(self.per_minute),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": self._reset_at(wait),
                "retry-after": str(max(1, math.ceil(wait))),
            }
            raise ApiError(429, "Rate limit exceeded", headers)
        if len(client.active) >= self.concurrent:
            retry = max(1, math.ceil(self.window))  # Luma: `Retry-After: 60`, scaled here
            raise ApiError(429, "Too many concurrent jobs", {"retry-after": str(retry)})

    def admit(self, owner: str, job_id: str) -> dict[str, str]:
        """Count an accepted create; the headers of its 201."""
        if not self.enabled:
            return {}
        now = time.monotonic()
        client = self._client(owner, now)
        client.stamps.append(now)
        client.active[job_id] = now + self.stale_after
        return {
            "x-ratelimit-limit": str(self.per_minute),
            "x-ratelimit-remaining": str(max(0, self.per_minute - len(client.stamps))),
            "x-ratelimit-reset": self._reset_at(self.window),
        }

    def finished(self, owner: str, job_id: str) -> None:
        client = self._clients.get(owner)
        if client is not None:
            client.active.pop(job_id, None)

    def active(self, owner: str) -> int:
        return len(self._client(owner, time.monotonic()).active)
