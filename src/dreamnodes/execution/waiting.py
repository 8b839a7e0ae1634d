"""Waiting for a generation to end: polling on a schedule fit for the job, or a callback that
only wakes the wait (a Get Generation confirms it before it is believed).

Once the account is saturated (a create waits for a running slot, or this one's create did),
each end seen sooner starts the next generation sooner (or ends the loop sooner), so the looks
come closer until the end (`busy_delay`): at a twentieth of the generation's age, from just
before the shortest generation of its family seen lately.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dreamnodes.api import answers as results
from dreamnodes.api.limiter import Pace
from dreamnodes.errors import DreamError

if TYPE_CHECKING:
    from dreamnodes.callbacks.receiver import Registration

# Seconds between polls: quick at first, then every 5 s (video jobs take 30 to 190 s).
VIDEO_POLLS = (2.0, 2.0, 3.0, 3.0, 5.0)
IMAGE_POLLS = (1.0, 1.0, 2.0)
# Waiting for a callback: the first look after a grace fit for the job (never more than half
# the timeout), then a slow pace until the timeout, with one last look at the deadline.
CALLBACK_GRACE = {"video": 30.0, "image": 10.0}
CALLBACK_PACE = {"video": 20.0, "image": 5.0}
# A saturated account's looks: a share of the generation's age, never closer than the floor
# (a 60 s video is looked at about every 3 s near its end, a 1 s one every 25 ms).
BUSY_SHARE = 0.05
BUSY_FLOOR = 0.025

Sleep = Callable[[float], Awaitable[None]]
# The generation now, given what we knew and the request it echoes (kept where none is echoed).
Look = Callable[[dict[str, Any], Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Busy:
    """The limiter holding a generation's running slot, the slot's family, and whether its
    create waited for the slot (then the generation is paced as saturated from the start:
    the last of a long loop are awaited too, though nobody waits for their slots)."""

    pace: Pace
    family: str
    waited: bool = False


def busy_delay(delay: float, age: float, shortest: float) -> float:
    """The next look of a saturated account: `delay` as scheduled, `age` seconds since the
    create was answered, `shortest` the family's shortest generation seen lately."""
    return min(delay, max(BUSY_FLOOR, BUSY_SHARE * age, 0.95 * shortest - age))


async def wait_until_done(
    output: dict[str, Any],
    look: Look,
    *,
    timeout: float,
    family: str = "video",
    callback: Registration | None = None,
    poll_scale: float = 1.0,
    sleep: Sleep = asyncio.sleep,
    poll: Sequence[float] | None = None,
    busy: Busy | None = None,
) -> dict[str, Any]:
    """Poll until the generation completes or fails; a failure is `generation_failed`.

    With a `callback` registration, a callback wakes the wait early, but only a Get
    Generation is believed: a terminal callback the service denies (forged, or for another
    generation) ends the listening and polling goes on. Without one arriving, the first
    look comes after a grace fit for the job and then at a slow pace, the last one at the
    deadline. Pixazo's status has no request echo: the created output's `request` is kept.
    ``poll`` is the node's own schedule (seconds between looks, the last repeating);
    ``busy``, the limiter of the generation's slot, brings looks closer once it is saturated.
    """
    sent = output.get("request")
    polling = schedule_for(family, poll, poll_scale, callback=False, timeout=timeout)
    schedule = polling
    if callback is not None:
        schedule = schedule_for(family, poll, poll_scale, callback=True, timeout=timeout)
    started = time.monotonic()
    deadline = started + timeout
    polls = 0
    saturated = False
    while output.get("state") not in results.TERMINAL:
        delay = schedule[min(polls, len(schedule) - 1)]
        now = time.monotonic()
        if busy is not None and callback is None:
            saturated = saturated or busy.waited or busy.pace.saturated(busy.family)
            if saturated:  # (and stays so until the end)
                delay = busy_delay(delay, now - started, busy.pace.shortest(busy.family))
        heard = None
        if callback is not None and not callback.closed and now < deadline:
            heard = await callback.wait(output["id"], max(0.0, min(delay, deadline - now)))
        elif now + delay > deadline:
            raise still_running(output, timeout, now - started)
        else:
            await sleep(delay)
        polls += 1
        output = await look(output, sent)
        if heard is not None and output.get("state") not in results.TERMINAL:
            callback = None  # the service denies what a callback said: stop listening
            schedule, polls = polling, 0
        if output.get("state") not in results.TERMINAL and time.monotonic() >= deadline:
            raise still_running(output, timeout, time.monotonic() - started)
    if output["state"] == "failed":
        raise failed(output)
    if busy is not None and polls:
        busy.pace.ran(busy.family, time.monotonic() - started)
    return output


def failed(output: Mapping[str, Any]) -> DreamError:
    """A generation that ended failed, as the error a run ends with."""
    reason = output.get("failure_reason") or "no reason given"
    code = output.get("failure_code")
    return DreamError(
        "generation_failed",
        f"generation {output['id']} failed: {reason}" + (f" ({code})" if code else ""),
        generation_id=output["id"],
        failure_reason=output.get("failure_reason"),
        retryable=output.get("retryable") is True,
    )


def schedule_for(
    family: str, poll: Sequence[float] | None, poll_scale: float, *, callback: bool, timeout: float
) -> tuple[float, ...]:
    """Seconds between looks: the node's own polls, or its family's; a callback's pace."""
    if callback:
        grace = min(CALLBACK_GRACE.get(family, 30.0) / poll_scale, timeout / 2)
        return (grace, CALLBACK_PACE.get(family, 20.0) / poll_scale)
    own = tuple(poll) if poll else (VIDEO_POLLS if family == "video" else IMAGE_POLLS)
    return tuple(d / poll_scale for d in own)


def still_running(output: Mapping[str, Any], timeout: float, waited: float) -> DreamError:
    # Said as it was: how long was waited, and the timeout (the next poll would pass it).
    return DreamError(
        "wait_timeout",
        f"generation {output['id']} is still {output.get('state')} after waiting"
        f" {waited:.1f} s (timeout {round(timeout, 1):g} s); get it later with get_generation",
        generation_id=output["id"],
        retryable=True,
    )
