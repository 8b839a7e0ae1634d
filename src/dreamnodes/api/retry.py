"""The retry policy a run is given, and the delays it asks for between attempts.

`retry_delays` is a wait generator in backoff 2.x's protocol: backoff primes it with
`send(None)`, then sends each failure (the exception) and sleeps the value it yields.
A failure that carries `retry_after` (seconds the server asked for) is waited exactly
that long, capped and without jitter; anything else gets capped exponential delays.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Generator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, TypeGuard

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from dreamnodes.errors import DreamError

MAX_ATTEMPTS_LIMIT = 5
# Delay-seconds as RFC 9110 has them (digits; a fraction tolerated): no sign, nan or inf.
_SECONDS = re.compile(r"\s*\d+(?:\.\d+)?\s*")


class RetryPolicy(BaseModel):
    """How often and how patiently one run retries (schemas/retry_policy.json says the same)."""

    # Strict like the JSON Schema: no "3" for 3, no true for 1.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    max_attempts: int = Field(default=5, ge=1, le=MAX_ATTEMPTS_LIMIT)
    first_delay: float = Field(default=1.0, ge=0, le=60)
    max_delay: float = Field(default=30.0, ge=0, le=300)
    multiplier: float = Field(default=2.0, ge=1, le=10)
    jitter: bool = True
    retry_after_cap: float = Field(default=60.0, ge=0, le=600)

    @classmethod
    def on_clock(cls, max_attempts: int = 5, time_scale: float = 1.0) -> RetryPolicy:
        """The default waits on a rehearsal's clock, `time_scale` times faster."""
        return cls(
            max_attempts=max_attempts, first_delay=1.0 / time_scale, max_delay=30.0 / time_scale
        )

    @pydantic.model_validator(mode="wrap")
    @classmethod
    def _as_dream_error(cls, data: Any, handler: pydantic.ValidatorFunctionWrapHandler) -> Any:
        # The host sees one error type, naming the field, the value and what is allowed.
        try:
            return handler(data)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or None
            raise DreamError(
                code="invalid_input",
                message=f"retry policy {field or ''}: {first['msg']} (got {first['input']!r})",
                field=field,
            ) from None


def retry_delays(
    policy: RetryPolicy, rng: Callable[[], float] = random.random
) -> Generator[float, Any, None]:
    """Backoff wait generator: exponential (equal jitter), or exactly the failure's Retry-After."""
    failure = yield  # type: ignore[misc]  # backoff primes the generator with send(None)
    step = 0
    while True:
        asked = getattr(failure, "retry_after", None)
        if _usable(asked):
            delay = min(float(asked), policy.retry_after_cap)
        else:
            delay = min(policy.first_delay * policy.multiplier**step, policy.max_delay)
            if policy.jitter:
                # Equal jitter: at least half the delay, so waits still grow, never in lockstep.
                delay = delay / 2 + rng() * delay / 2
        step += 1
        failure = yield delay


def _usable(seconds: object) -> TypeGuard[float]:
    """A wait a server may ask for: a finite, non-negative number (not a bool)."""
    return (
        isinstance(seconds, int | float)
        and not isinstance(seconds, bool)
        and math.isfinite(seconds)
        and seconds >= 0
    )


def _seconds(text: str, scale: float = 1.0) -> float | None:
    if not _SECONDS.fullmatch(text):
        return None
    value = float(text) / scale
    return value if math.isfinite(value) else None


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked to wait (`retry-after-ms`, `Retry-After` seconds or date).

    None when it asked for nothing usable: no header, or a value that is not a finite,
    non-negative number or an HTTP date ("nan", "inf", "-3", "soon"); the policy's own
    backoff applies then. A date in the past means no wait.
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        found = _seconds(millis, 1000.0)
        if found is not None:
            return found
    value = headers.get("retry-after")
    if value is None:
        return None
    found = _seconds(value)
    if found is not None:
        return found
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


class Retryable(Exception):
    """One failed attempt worth another; `error` is what the user sees if it was the last."""

    def __init__(self, error: DreamError, retry_after: float | None, lost: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after  # read by retry_delays
        self.lost = lost  # the request may have been accepted and its answer lost
        self.delay = 0.0


def deferred(policy: RetryPolicy) -> Generator[float, Any, None]:
    # backoff sleeps with asyncio.sleep; the client sleeps with its own (injectable) sleep, so
    # backoff gets 0 and the policy's delay rides on the failure to the on_backoff handler.
    delays = retry_delays(policy)
    delays.send(None)
    failure = yield  # type: ignore[misc]
    while True:
        failure.delay = delays.send(failure)
        failure = yield 0.0
