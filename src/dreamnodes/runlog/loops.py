"""Running one node over an array: a bounded worker pool, results in input order, progress.

`run_each` starts at most `concurrency` items at once and yields each item's result as soon as
it and every earlier item are done, so the output has one entry per item, in input order,
whatever order they finish in. Memory stays bounded for any number of items: workers take
items one by one, and no item starts more than `lookahead` places past the first result not yet
handed out (so one slow item cannot make the buffer of finished later items grow without end).

With `stop_on_error`, the first failure stops new items from starting; running items finish
and are yielded with their own result; every item never started is yielded with a DreamError
`not_run` ("not run: stopped after the item at index N failed (its code)") and the failing
item's index as `stopped_by`. Such an item was never sent: running it again is safe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dreamnodes.errors import DreamError

NOT_RUN_PREFIX = "not run: stopped after the item at index"


@dataclass(frozen=True)
class ItemResult:
    """One item's outcome: the node's output, or the error (exactly one of them is set)."""

    index: int
    item: Any
    output: dict[str, Any] | None
    error: DreamError | None
    stopped_by: int | None = None  # not run: the index of the item whose failure stopped the loop

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Progress:
    """Where a loop stands. `done` counts every item with a result, failed and skipped too."""

    total: int
    done: int
    failed: int
    running: int
    elapsed: float
    rate: float  # items finished per second
    eta: float | None  # seconds left at that rate; None before anything finished
    skipped: int = 0  # not run after a stop_on_error stop (also counted in done)


class _Tally:
    """The counters behind Progress."""

    def __init__(self, total: int, on_progress: Callable[[Progress], None] | None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.skipped = 0
        self.running = 0
        self.start = time.monotonic()
        self._on_progress = on_progress

    def report(self) -> None:
        if self._on_progress is None:
            return
        elapsed = time.monotonic() - self.start
        finished = self.done - self.skipped
        rate = finished / elapsed if elapsed > 0 else 0.0
        left = self.total - self.done
        eta = left / rate if rate > 0 else (0.0 if left == 0 else None)
        self._on_progress(
            Progress(
                total=self.total,
                done=self.done,
                failed=self.failed,
                running=self.running,
                elapsed=elapsed,
                rate=rate,
                eta=eta,
                skipped=self.skipped,
            )
        )


def _as_dream_error(exc: Exception) -> DreamError:
    if isinstance(exc, DreamError):
        return exc
    return DreamError("provider_error", str(exc) or type(exc).__name__)


async def run_each(
    items: Sequence[Any],
    run_item: Callable[[int, Any], Awaitable[dict[str, Any]]],
    *,
    concurrency: int = 16,
    stop_on_error: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    lookahead: int | None = None,
) -> AsyncGenerator[ItemResult, None]:
    """Run `run_item(index, item)` for every item; yield the results in input order.

    A failing item (a DreamError, or any other exception, which becomes a DreamError
    `provider_error` with its message) does not stop the others unless `stop_on_error`.
    `lookahead` (default max(1024, 64 * concurrency)) bounds how far past the first unfinished
    item new items may start. Close the iterator (`contextlib.aclosing`) to stop early: running
    items are cancelled.
    """
    if concurrency < 1:
        raise DreamError(
            "invalid_input",
            f"concurrency must be at least 1, got {concurrency}",
            field="concurrency",
        )
    total = len(items)
    tally = _Tally(total, on_progress)
    ahead = asyncio.Semaphore(lookahead or max(1024, 64 * concurrency))
    finished: dict[int, ItemResult] = {}
    ready = asyncio.Event()
    next_start = 0
    stopped: DreamError | None = None
    stopped_at = -1

    async def worker() -> None:
        nonlocal next_start, stopped, stopped_at
        while True:
            await ahead.acquire()
            if stopped is not None or next_start >= total:
                ahead.release()
                return
            index = next_start
            next_start += 1
            item = items[index]
            tally.running += 1
            tally.report()
            try:
                result = ItemResult(index, item, await run_item(index, item), None)
            except Exception as exc:
                result = ItemResult(index, item, None, _as_dream_error(exc))
            tally.running -= 1
            tally.done += 1
            if result.error is not None:
                tally.failed += 1
                if stop_on_error and stopped is None:
                    stopped, stopped_at = result.error, index
            finished[index] = result
            tally.report()
            ready.set()

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, total))]
    try:
        for index in range(total):
            while index not in finished:
                if stopped is not None and index >= next_start:
                    break  # never started and never will be
                if all(w.done() for w in workers):
                    for w in workers:
                        w.result()  # a worker that died re-raises here
                    raise RuntimeError(f"item {index} has no result")  # pragma: no cover
                ready.clear()
                await ready.wait()
            if index in finished:
                result = finished.pop(index)
                ahead.release()
            else:
                assert stopped is not None
                result = ItemResult(
                    index,
                    items[index],
                    None,
                    DreamError("not_run", f"{NOT_RUN_PREFIX} {stopped_at} failed ({stopped.code})"),
                    stopped_by=stopped_at,
                )
                tally.done += 1
                tally.skipped += 1
                tally.report()
            yield result
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
