"""The render cache: bounded, least recently used first out, one render per key at a time."""

from __future__ import annotations

import threading
import time

import pytest

from dreamnodes.sandbox.media.cache import RenderCache


def test_least_recently_used_entry_is_dropped_first() -> None:
    cache = RenderCache(max_entries=2)
    cache.get_or_render("a", lambda: b"A")
    cache.get_or_render("b", lambda: b"B")
    cache.get_or_render("a", lambda: b"unused")  # a is now the most recent
    cache.get_or_render("c", lambda: b"C")
    assert cache.get_or_render("a", lambda: b"again") == b"A"
    assert cache.get_or_render("b", lambda: b"B2") == b"B2"  # b was dropped and rendered again


def test_byte_budget_bounds_the_cache() -> None:
    cache = RenderCache(max_entries=100, max_bytes=10)
    for key in "abcd":
        cache.get_or_render(key, lambda: b"xxxx")
    assert len(cache) == 2
    assert cache.size_bytes == 8
    cache.get_or_render("huge", lambda: b"y" * 11)  # larger than the budget: not kept
    assert len(cache) == 2


def test_concurrent_callers_share_one_render() -> None:
    cache = RenderCache()
    calls: list[int] = []

    def slow_render() -> bytes:
        calls.append(1)
        time.sleep(0.05)
        return b"clip"

    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_render("k", slow_render)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [b"clip"] * 8
    assert len(calls) == 1


def test_a_failed_render_is_not_cached() -> None:
    cache = RenderCache()

    def broken() -> bytes:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cache.get_or_render("k", broken)
    assert cache.get_or_render("k", lambda: b"ok") == b"ok"


def test_paint_ahead_hands_over_frames_in_order_and_raises_painting_errors() -> None:
    from collections.abc import Iterator

    import numpy as np

    from dreamnodes.sandbox.media.codec import RGBFrame
    from dreamnodes.sandbox.media.render import _painted_ahead

    frames = [np.full((2, 2, 3), n, dtype=np.uint8) for n in range(10)]
    assert [int(f[0, 0, 0]) for f in _painted_ahead(iter(frames), depth=2)] == list(range(10))

    def broken() -> Iterator[RGBFrame]:
        yield frames[0]
        raise ValueError("paint failed")

    with pytest.raises(ValueError, match="paint failed"):
        list(_painted_ahead(broken()))


def test_paint_ahead_stops_its_thread_when_the_encoder_gives_up() -> None:
    import numpy as np

    from dreamnodes.sandbox.media.render import _painted_ahead

    frames = (np.zeros((2, 2, 3), dtype=np.uint8) for _ in range(1000))
    ahead = _painted_ahead(frames, depth=1)
    next(ahead)
    ahead.close()  # what happens when encoding fails half-way
    assert not any(t.name == "dreamnodes-paint" for t in threading.enumerate())
