"""A saturated account (a create waits for a running slot) sees each generation's end sooner,
so its next generation starts sooner; otherwise the looks keep the job's own pace."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from dreamnodes.execution.waiting import Busy, wait_until_done


class Pace:
    """A limiter's word on its running slots, as `wait_until_done` asks for it."""

    def __init__(self, saturated: bool, shortest: float = 0.0) -> None:
        self.now, self.seen = saturated, shortest
        self.ran_for: list[float] = []

    def saturated(self, family: str) -> bool:
        assert family == "video"
        return self.now

    def shortest(self, family: str) -> float:
        return self.seen

    def ran(self, family: str, seconds: float) -> None:
        self.ran_for.append(seconds)


def _wait(pace: Pace | None, dreams: float, waited: bool = False) -> tuple[float, list[float]]:
    """Wait for a generation that completes `dreams` seconds from now: how late its end was
    seen, and when each look came (seconds from the start)."""

    async def main() -> tuple[float, list[float]]:
        start = time.monotonic()
        looks: list[float] = []

        async def look(output: dict[str, Any], sent: Any) -> dict[str, Any]:
            looks.append(time.monotonic() - start)
            state = "completed" if looks[-1] >= dreams else "dreaming"
            return {"id": output["id"], "state": state}

        busy = None if pace is None else Busy(pace, "video", waited)
        done = await wait_until_done({"id": "g-1", "state": "queued"}, look, timeout=30, busy=busy)
        assert done["state"] == "completed"
        return looks[-1] - dreams, looks

    return asyncio.run(main())


def test_an_account_with_free_slots_keeps_the_jobs_pace() -> None:
    late, looks = _wait(Pace(False), 0.6)
    assert len(looks) == 1 and late > 1.3  # the first look of a video comes after 2 s


def test_a_saturated_account_sees_the_end_within_a_few_hundredths_of_a_second() -> None:
    pace = Pace(True)  # no generation seen yet: looks at a twentieth of the age
    late, looks = _wait(pace, 0.6)
    assert late < 0.1, late
    assert len(looks) < 40, looks  # never closer than the floor (25 ms)
    assert len(pace.ran_for) == 1 and 0.6 <= pace.ran_for[0] < 0.7  # learned for the next


def test_the_shortest_generation_seen_saves_the_early_looks() -> None:
    late, looks = _wait(Pace(True, 0.6), 0.6)
    assert looks[0] >= 0.95 * 0.6 - 0.01, looks  # nothing could have ended sooner
    assert late < 0.1 and len(looks) <= 6, looks


def test_a_generation_whose_create_waited_for_its_slot_is_looked_at_closely_to_the_end() -> None:
    """The last of a long loop: nobody waits for its slot, but the loop waits for its end."""
    late, looks = _wait(Pace(False, 0.6), 0.6, waited=True)
    assert late < 0.1 and len(looks) <= 6, looks
