"""Loops over arrays: order, isolation, stop_on_error, bounded pool, progress, items files."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

from dreamnodes.cli.loop import BLANK, read_lines
from dreamnodes.cli.progress import ProgressBar, render
from dreamnodes.errors import DreamError
from dreamnodes.runlog.loops import ItemResult, Progress, run_each


def collect(*args: Any, **kwargs: Any) -> list[ItemResult]:
    async def main() -> list[ItemResult]:
        return [r async for r in run_each(*args, **kwargs)]

    return asyncio.run(main())


def test_results_come_in_input_order_whatever_order_items_finish_in() -> None:
    finished: list[int] = []

    async def run_item(index: int, item: Any) -> dict[str, Any]:
        await asyncio.sleep(item)
        finished.append(index)
        return {"index": index}

    delays = [0.05, 0.04, 0.03, 0.02, 0.01, 0.0]
    results = collect(delays, run_item, concurrency=6)
    assert finished == [5, 4, 3, 2, 1, 0]
    assert [r.index for r in results] == [0, 1, 2, 3, 4, 5]
    assert [r.output for r in results] == [{"index": i} for i in range(6)]
    assert [r.item for r in results] == delays
    assert all(r.error is None and r.ok for r in results)


def test_a_result_is_yielded_as_soon_as_it_and_all_earlier_ones_are_done() -> None:
    async def run_item(index: int, item: Any) -> dict[str, Any]:
        await asyncio.sleep(item)
        return {}

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        return [loop.time() - start async for _ in run_each([0.0, 0.3], run_item)]

    first, second = asyncio.run(main())
    assert first < 0.05  # not held back until the slow item is done
    assert second >= 0.3


def test_no_more_than_concurrency_items_run_at_once_and_the_pool_is_kept_full() -> None:
    running = 0
    most = 0

    async def run_item(index: int, item: Any) -> dict[str, Any]:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        return {}

    results = collect(range(40), run_item, concurrency=4)
    assert len(results) == 40
    assert most == 4


def test_a_failing_item_does_not_stop_the_others() -> None:
    async def run_item(index: int, item: Any) -> dict[str, Any]:
        if item == "bad":
            raise DreamError("generation_failed", "the model refused", generation_id="g-1")
        if item == "crash":
            raise ValueError("boom")
        return {"item": item}

    results = collect(["a", "bad", "b", "crash", "c"], run_item, concurrency=2)
    assert [r.output for r in results] == [{"item": "a"}, None, {"item": "b"}, None, {"item": "c"}]
    bad, crash = results[1].error, results[3].error
    assert bad is not None and bad.code == "generation_failed" and bad.generation_id == "g-1"
    assert crash is not None and crash.code == "provider_error" and crash.message == "boom"


def test_stop_on_error_lets_running_items_finish_and_marks_the_rest_not_run() -> None:
    started: list[int] = []

    async def run_item(index: int, item: Any) -> dict[str, Any]:
        started.append(index)
        if index == 1:
            await asyncio.sleep(0.01)
            raise DreamError("insufficient_credits", "no credits left", status=402)
        await asyncio.sleep(0.05)
        return {"index": index}

    results = collect(range(10), run_item, concurrency=3, stop_on_error=True)
    assert sorted(started) == [0, 1, 2]
    assert [r.index for r in results] == list(range(10))
    assert results[0].output == {"index": 0} and results[2].output == {"index": 2}
    assert results[1].error is not None and results[1].error.code == "insufficient_credits"
    for r in results[3:]:
        assert r.output is None and r.error is not None
        assert r.error.message == (
            "not run: stopped after the item at index 1 failed (insufficient_credits)"
        )
        assert r.error.code == "not_run" and r.stopped_by == 1
        assert not r.error.retryable


def test_progress_numbers_add_up() -> None:
    seen: list[Progress] = []

    async def run_item(index: int, item: Any) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        if index % 4 == 0:
            raise DreamError("provider_error", "nope")
        return {}

    collect(range(12), run_item, concurrency=3, on_progress=seen.append)
    assert all(p.total == 12 for p in seen)
    assert max(p.running for p in seen) == 3
    assert all(p.running <= 3 for p in seen)
    dones = [p.done for p in seen]
    assert dones == sorted(dones)
    last = seen[-1]
    assert (last.done, last.failed, last.running, last.skipped) == (12, 3, 0, 0)
    assert last.elapsed >= 0.04  # 12 items, 3 at a time, 10 ms each
    assert last.rate == pytest.approx(12 / last.elapsed)
    assert last.eta == 0.0
    middle = next(p for p in seen if p.done == 6)
    assert middle.eta == pytest.approx(6 / middle.rate)


def test_progress_counts_not_run_items_as_skipped() -> None:
    seen: list[Progress] = []

    async def run_item(index: int, item: Any) -> dict[str, Any]:
        raise DreamError("auth_failed", "bad key")

    collect(range(5), run_item, concurrency=1, stop_on_error=True, on_progress=seen.append)
    assert (seen[-1].done, seen[-1].failed, seen[-1].skipped) == (5, 1, 4)


def test_many_items_use_a_bounded_pool_of_tasks() -> None:
    most_tasks = 0

    async def run_item(index: int, item: Any) -> dict[str, Any]:
        nonlocal most_tasks
        if index % 500 == 0:
            most_tasks = max(most_tasks, len(asyncio.all_tasks()))
        await asyncio.sleep(0)
        return {"i": index}

    async def main() -> int:
        count = 0
        async for r in run_each(range(20_000), run_item, concurrency=8):
            assert r.index == count
            count += 1
        return count

    assert asyncio.run(main()) == 20_000
    assert most_tasks <= 8 + 1  # the workers and the main task, never one per item


def test_a_slow_first_item_does_not_let_later_items_pile_up_without_bound() -> None:
    highest_started_while_first_runs = 0
    first_done = False

    async def run_item(index: int, item: Any) -> dict[str, Any]:
        nonlocal highest_started_while_first_runs, first_done
        if index == 0:
            await asyncio.sleep(0.1)
            first_done = True
        elif not first_done:
            highest_started_while_first_runs = max(highest_started_while_first_runs, index)
        return {}

    results = collect(range(500), run_item, concurrency=4, lookahead=50)
    assert len(results) == 500
    assert highest_started_while_first_runs == 49


def test_closing_the_loop_early_cancels_running_items() -> None:
    cancelled: list[int] = []

    async def run_item(index: int, item: Any) -> dict[str, Any]:
        try:
            await asyncio.sleep(0 if index == 0 else 10)
        except asyncio.CancelledError:
            cancelled.append(index)
            raise
        return {}

    async def main() -> list[int]:
        got = []
        async with contextlib.aclosing(run_each(range(5), run_item, concurrency=3)) as results:
            async for r in results:
                got.append(r.index)
                break
        return got

    assert asyncio.run(asyncio.wait_for(main(), 1)) == [0]
    assert sorted(cancelled) == [1, 2, 3]


def test_bad_concurrency_is_an_input_error() -> None:
    async def run_item(index: int, item: Any) -> dict[str, Any]:
        return {}

    with pytest.raises(DreamError) as caught:
        collect([1], run_item, concurrency=0)
    assert caught.value.field == "concurrency"


def test_empty_items_give_nothing() -> None:
    async def run_item(index: int, item: Any) -> dict[str, Any]:
        raise AssertionError("not called")

    assert collect([], run_item) == []


# -- the progress bar ----------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def progress(done: int, **kw: Any) -> Progress:
    values: dict[str, Any] = {
        "total": 100,
        "done": done,
        "failed": 3,
        "running": 10,
        "elapsed": 35.0,
        "rate": 1.2,
        "eta": 48.0,
    }
    values.update(kw)
    return Progress(**values)


def test_render_shows_done_failed_running_rate_and_time_left() -> None:
    assert render(progress(42)) == (
        "[########............] 42/100 done, 3 failed, 10 running, 1.2/s, 48s left"
    )
    assert render(progress(100, running=0, eta=0.0, elapsed=83.0)) == (
        "[####################] 100/100 done, 3 failed, 0 running, 1.2/s, 1m23s total"
    )
    assert "5 not run" in render(progress(100, skipped=5))


def test_bar_draws_on_a_terminal_at_most_ten_times_a_second_and_ends_the_line() -> None:
    stream = Terminal()
    now = [0.0]
    bar = ProgressBar(stream, clock=lambda: now[0])
    for done in range(50):  # all within the same instant: drawn once
        bar(progress(done))
    now[0] = 0.05
    bar(progress(50))  # too soon
    now[0] = 0.11
    bar(progress(60))
    bar(progress(100, running=0))
    bar(progress(100, running=0))  # after the final line: nothing more
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") == 3
    assert " 0/100 done" in text and " 60/100 done" in text and " 50/100" not in text
    assert text.endswith("100/100 done, 3 failed, 0 running, 1.2/s, 35s total\x1b[K\n")
    assert text.count("\n") == 1


def test_bar_close_ends_an_unfinished_line() -> None:
    stream = Terminal()
    bar = ProgressBar(stream)
    bar(progress(7))
    bar.close()
    bar.close()
    assert stream.getvalue().endswith("7/100 done, 3 failed, 10 running, 1.2/s, 48s left\x1b[K\n")
    assert stream.getvalue().count("\n") == 1


def test_bar_draws_nothing_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream)
    for done in range(101):
        bar(progress(done))
    bar.close()
    assert stream.getvalue() == ""


def test_bar_follows_a_real_loop() -> None:
    stream = Terminal()

    async def run_item(index: int, item: Any) -> dict[str, Any]:
        await asyncio.sleep(0.001)
        return {}

    bar = ProgressBar(stream)
    collect(range(20), run_item, concurrency=5, on_progress=bar)
    bar.close()
    last_line = stream.getvalue().rsplit("\r", 1)[-1]
    assert last_line.startswith("[####################] 20/20 done, 0 failed, 0 running")
    assert last_line.endswith("total\x1b[K\n")


# -- items files ---------------------------------------------------------------------------


def test_read_lines_reads_one_json_value_per_line_and_keeps_blank_lines_places(
    tmp_path: Path,
) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"prompt": "a cat"}\n\n  \n"just text"\n[1, 2]\n42\n\n', encoding="utf-8")
    lines = read_lines(str(path))
    assert lines == [{"prompt": "a cat"}, BLANK, BLANK, "just text", [1, 2], 42]


def test_read_lines_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"prompt": "a"}\n\n{"prompt": "b",}\n', encoding="utf-8")
    with pytest.raises(DreamError) as caught:
        read_lines(str(path))
    error = caught.value
    assert error.code == "invalid_input" and error.field == "each"
    assert "line 3" in error.message
    assert "Expecting property name" in error.message


def test_read_lines_of_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(DreamError) as caught:
        read_lines(str(tmp_path / "nope.jsonl"))
    assert caught.value.code == "invalid_input" and caught.value.field == "each"
    assert "nope.jsonl" in caught.value.message
