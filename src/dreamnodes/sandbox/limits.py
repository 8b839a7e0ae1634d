"""Luma's account limits per family: running generations and creates per sliding minute."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from dreamnodes.sandbox.errors import ApiError

Family = Literal["video", "image"]


@dataclass
class _Bucket:
    concurrent: int
    per_window: int
    window: float
    stamps: deque[float] = field(default_factory=deque)
    running: dict[str, float] = field(default_factory=dict)  # id -> expected end (monotonic)


class Limits:
    def __init__(
        self,
        enabled: bool,
        window_seconds: float,
        video: tuple[int, int],
        image: tuple[int, int],
    ) -> None:
        self.enabled = enabled
        self._buckets: dict[str, _Bucket] = {
            "video": _Bucket(video[0], video[1], window_seconds),
            "image": _Bucket(image[0], image[1], window_seconds),
        }

    def check(self, family: Family, now: float | None = None) -> None:
        """Raise ApiError(429) with Retry-After when a create of this family must be refused."""
        if not self.enabled:
            return
        now = time.monotonic() if now is None else now
        bucket = self._buckets[family]
        while bucket.stamps and bucket.stamps[0] <= now - bucket.window:
            bucket.stamps.popleft()
        if len(bucket.running) >= bucket.concurrent:
            wait = min(bucket.running.values()) - now
            raise _too_many(
                f"Too many concurrent generations: your plan allows {bucket.concurrent}"
                f" running {family} generations",
                wait,
            )
        if len(bucket.stamps) >= bucket.per_window:
            wait = bucket.stamps[0] + bucket.window - now
            raise _too_many(
                f"Rate limit exceeded: your plan allows {bucket.per_window}"
                f" {family} generation requests per minute",
                wait,
            )

    def admit(self, family: Family, gen_id: str, expected_seconds: float) -> None:
        """Count an accepted create."""
        now = time.monotonic()
        bucket = self._buckets[family]
        bucket.stamps.append(now)
        bucket.running[gen_id] = now + expected_seconds

    def finished(self, family: Family, gen_id: str) -> None:
        self._buckets[family].running.pop(gen_id, None)


def _too_many(detail: str, wait: float) -> ApiError:
    wait = max(wait, 0.01)
    return ApiError(429, detail, retry_after_headers(wait))


def retry_after_headers(seconds: float) -> dict[str, str]:
    """`Retry-After` in seconds (a decimal when the time scale makes it fractional)."""
    text = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}"
    return {"retry-after": text, "retry-after-ms": str(max(1, round(seconds * 1000)))}
