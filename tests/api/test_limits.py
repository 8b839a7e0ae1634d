"""The per-key scheduler: window and concurrency limits, fairness, 429s, sharing."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from dreamnodes.api.limits import Limits, family_of
from dreamnodes.api.scheduler import Scheduler, Ticket
from dreamnodes.errors import DreamError

WINDOW = 0.2


def small(concurrent: int = 3, per_window: int = 5) -> Limits:
    return Limits(
        video_concurrent=concurrent,
        video_per_minute=per_window,
        image_concurrent=concurrent * 2,
        image_per_minute=per_window * 2,
        window_seconds=WINDOW,
    )


def max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


def test_no_window_holds_more_than_n_and_no_more_than_c_run() -> None:
    limits = small(concurrent=3, per_window=5)
    scheduler = Scheduler(limits)
    grants: list[float] = []
    running = 0
    most_running = 0
    rng = random.Random(7)

    async def one() -> None:
        nonlocal running, most_running
        ticket = await scheduler.acquire("video")
        grants.append(asyncio.get_running_loop().time())
        running += 1
        most_running = max(most_running, running)
        await asyncio.sleep(rng.uniform(0.0, 0.08))
        running -= 1
        ticket.release()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(*(one() for _ in range(20)))
        return loop.time() - start

    makespan = asyncio.run(main())
    assert len(grants) == 20
    assert max_in_any_window(grants, WINDOW) <= 5
    assert most_running == 3
    # 20 creates at 5 per window need 3 full windows after the first burst; not much more.
    assert 3 * WINDOW <= makespan < 3 * WINDOW + 0.15


def test_released_ticket_lets_the_next_waiter_go_at_once() -> None:
    scheduler = Scheduler(small(concurrent=1, per_window=100))

    async def main() -> tuple[float, float, dict[str, int]]:
        loop = asyncio.get_running_loop()
        first = await scheduler.acquire("video")
        second = asyncio.create_task(scheduler.acquire("video"))
        await asyncio.sleep(0.05)
        waiting = scheduler.snapshot()["video"]
        assert not second.done()
        released_at = loop.time()
        first.release()
        ticket = await second
        granted_at = loop.time()
        ticket.release()
        return released_at, granted_at, waiting

    released_at, granted_at, waiting = asyncio.run(main())
    assert waiting["running"] == 1 and waiting["waiting"] == 1
    assert granted_at - released_at < 0.02


def test_a_full_window_waits_exactly_until_the_oldest_create_leaves() -> None:
    scheduler = Scheduler(small(concurrent=10, per_window=2))

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        times = []
        for _ in range(3):
            ticket = await scheduler.acquire("video")
            times.append(loop.time())
            ticket.release()
        return times

    times = asyncio.run(main())
    assert times[1] - times[0] < 0.01
    assert WINDOW <= times[2] - times[0] < WINDOW + 0.05


def test_waiters_are_served_first_come_first_served() -> None:
    scheduler = Scheduler(small(concurrent=1, per_window=100))
    order: list[int] = []

    async def one(n: int) -> None:
        ticket = await scheduler.acquire("video")
        order.append(n)
        await asyncio.sleep(0.005)
        ticket.release()

    async def main() -> None:
        tasks = []
        for n in range(6):
            tasks.append(asyncio.create_task(one(n)))
            await asyncio.sleep(0)  # each asks in turn
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert order == [0, 1, 2, 3, 4, 5]


def test_refused_create_leaves_the_window_and_frees_its_slot() -> None:
    scheduler = Scheduler(small(concurrent=1, per_window=1))

    async def main() -> float:
        loop = asyncio.get_running_loop()
        ticket = await scheduler.acquire("video")
        assert scheduler.snapshot()["video"]["sent_in_window"] == 1
        ticket.refused()
        assert scheduler.snapshot()["video"]["sent_in_window"] == 0
        assert scheduler.snapshot()["video"]["running"] == 0
        start = loop.time()
        again = await scheduler.acquire("video")
        again.release()
        again.release()  # idempotent
        ticket.release()  # already finished by refused(): no effect
        assert scheduler.snapshot()["video"]["running"] == 0
        assert scheduler.snapshot()["video"]["sent_in_window"] == 1
        return loop.time() - start

    assert asyncio.run(main()) < 0.01


def test_rate_limited_holds_new_creates_for_retry_after() -> None:
    scheduler = Scheduler(small())

    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        scheduler.rate_limited("video", 0.1)
        assert scheduler.snapshot()["video"]["held_seconds"] > 0.09
        start = loop.time()
        video = await scheduler.acquire("video")
        video_wait = loop.time() - start
        start = loop.time()
        image = await scheduler.acquire("image")  # the other family is not held
        image_wait = loop.time() - start
        video.release()
        image.release()
        return video_wait, image_wait

    video_wait, image_wait = asyncio.run(main())
    assert 0.1 <= video_wait < 0.13
    assert image_wait < 0.01


def test_rate_limited_without_retry_after_backs_off_and_doubles() -> None:
    scheduler = Scheduler(small(per_window=5))  # even spacing: 0.2 / 5 = 0.04 s

    async def main() -> tuple[float, float]:
        scheduler.rate_limited("video", None)
        first = scheduler.snapshot()["video"]["held_seconds"]
        scheduler.rate_limited("video", None)
        second = scheduler.snapshot()["video"]["held_seconds"]
        return first, second

    first, second = asyncio.run(main())
    assert first == pytest.approx(0.04, abs=0.005)
    assert second == pytest.approx(0.08, abs=0.005)


def test_retry_after_is_capped_at_two_windows() -> None:
    scheduler = Scheduler(small())

    async def main() -> float:
        scheduler.rate_limited("video", 3600)
        return float(scheduler.snapshot()["video"]["held_seconds"])

    assert asyncio.run(main()) == pytest.approx(2 * WINDOW, abs=0.01)


def test_cancelled_waiter_does_not_keep_a_slot_or_block_the_queue() -> None:
    scheduler = Scheduler(small(concurrent=1, per_window=100))

    async def main() -> Ticket:
        first = await scheduler.acquire("video")
        cancelled = asyncio.create_task(scheduler.acquire("video"))
        later = asyncio.create_task(scheduler.acquire("video"))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        await asyncio.sleep(0)
        first.release()
        ticket = await asyncio.wait_for(later, 0.1)
        assert cancelled.cancelled()
        assert scheduler.snapshot()["video"]["running"] == 1
        assert scheduler.snapshot()["video"]["waiting"] == 0
        return ticket

    asyncio.run(main()).release()


def test_families_are_limited_separately() -> None:
    scheduler = Scheduler(small(concurrent=1, per_window=100))

    async def main() -> None:
        video = await scheduler.acquire("video")
        image = await asyncio.wait_for(scheduler.acquire("image"), 0.05)
        image2 = await asyncio.wait_for(scheduler.acquire("image"), 0.05)  # image_concurrent 2
        snap = scheduler.snapshot()
        assert snap["video"]["running"] == 1
        assert snap["image"]["running"] == 2
        for t in (video, image, image2):
            t.release()

    asyncio.run(main())


def test_unknown_family_is_refused() -> None:
    scheduler = Scheduler()
    with pytest.raises(DreamError) as caught:
        asyncio.run(scheduler.acquire("audio"))
    assert caught.value.code == "invalid_input"


def test_shared_is_one_per_key_and_base_url_and_never_holds_the_key() -> None:
    key = "luma-" + uuid.uuid4().hex
    a = Scheduler.shared(key, "http://127.0.0.1:1/")
    b = Scheduler.shared(key, "http://127.0.0.1:1")
    c = Scheduler.shared(key, "http://127.0.0.1:2")
    d = Scheduler.shared("other-" + key, "http://127.0.0.1:1")
    assert a is b
    assert a is not c and a is not d
    assert key not in repr(a)
    assert all(key not in str(k) for k in Scheduler._registry)
    assert key not in repr(vars(a))
    tier = Limits(video_concurrent=20, video_per_minute=40)
    assert Scheduler.shared(key, "http://127.0.0.1:1", tier).limits == tier
    assert Scheduler.shared(key, "http://127.0.0.1:1").limits == tier


def test_shared_scheduler_survives_a_new_event_loop() -> None:
    scheduler = Scheduler.shared("k-" + uuid.uuid4().hex, "http://x", small(per_window=2))

    async def burst() -> None:
        for _ in range(2):
            (await scheduler.acquire("video")).release()

    asyncio.run(burst())

    async def after() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        (await scheduler.acquire("video")).release()
        return loop.time() - start

    # The window is still full from the first loop's creates: the next one waits for it.
    assert asyncio.run(after()) > 0.1


def test_family_of_models_and_generation_types() -> None:
    assert family_of("ray-2") == "video"
    assert family_of("ray-flash-2") == "video"
    assert family_of("photon-1") == "image"
    assert family_of("photon-flash-1") == "image"
    assert family_of(None, "upscale_video") == "video"
    assert family_of(None, "add_audio") == "video"
    assert family_of(None, "modify_video") == "video"
    assert family_of(None, "reframe_video") == "video"
    assert family_of(None, "reframe_image") == "image"
    assert family_of("photon-1", "image") == "image"
    assert family_of("ray-2", "video") == "video"
    assert family_of(None) == "video"


def test_scaled_limits_shrink_only_the_window() -> None:
    scaled = Limits().scaled(60)
    assert scaled.window_seconds == pytest.approx(1.0)
    assert (scaled.video_concurrent, scaled.video_per_minute) == (10, 20)
    assert (scaled.image_concurrent, scaled.image_per_minute) == (40, 80)
    with pytest.raises(DreamError):
        Limits().scaled(0)
    with pytest.raises(DreamError):
        Limits(video_concurrent=0)


def test_saturated_while_a_create_waits_for_a_running_slot_and_its_ticket_says_so() -> None:
    scheduler = Scheduler(small(concurrent=1, per_window=100))

    async def main() -> None:
        assert not scheduler.saturated("video")  # nothing runs
        first = await scheduler.acquire("video")
        assert not scheduler.saturated("video")  # the cap is full, but nobody waits
        second = asyncio.create_task(scheduler.acquire("video"))
        third = asyncio.create_task(scheduler.acquire("video"))
        await asyncio.sleep(0.01)
        assert scheduler.saturated("video") and not scheduler.saturated("image")
        assert scheduler.shortest("video") == 0.0  # no generation seen yet
        scheduler.ran("video", 4.0)
        scheduler.ran("video", 2.5)
        assert scheduler.shortest("video") == 2.5  # the shortest seen lately
        first.release()
        granted = await second
        granted.release()
        last = await third  # nobody waits behind it, but it waited for its slot
        assert not first.waited and granted.waited and last.waited
        assert not scheduler.saturated("video")
        last.release()
        again = await scheduler.acquire("video")
        assert not again.waited  # a free slot at once
        again.release()

    asyncio.run(main())


def test_a_create_waiting_for_the_window_does_not_make_the_account_saturated() -> None:
    scheduler = Scheduler(small(concurrent=5, per_window=1))

    async def main() -> None:
        first = await scheduler.acquire("video")
        second = asyncio.create_task(scheduler.acquire("video"))
        await asyncio.sleep(0.01)
        assert not second.done()  # it waits for the window, not for a running slot
        assert not scheduler.saturated("video")  # a generation's end would not help it
        first.release()
        ticket = await second
        assert not ticket.waited
        ticket.release()

    asyncio.run(main())
