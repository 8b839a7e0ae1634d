"""`serve --engine celery`: runs recorded here, their creates and polls done by Celery workers.

`CeleryEngine.run` is `run_recorded` across machines: the run is prepared and recorded here
(so its id is known at once), a running slot is taken in the shared Redis limiter (so the
queue never holds more creates than the account may start), and its first step is queued;
the workers do the rest (`work`). A callback arriving here sends the run's next look at once.
The run's end is heard on a Redis channel (and read from the shared run log every few seconds,
in case a message was missed). The watchdog sends again, every second, any step that is late
or whose worker died; the step's token makes the older task stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import redis

from dreamnodes.engine.celery_app import QUEUE, make_app, send_step
from dreamnodes.engine.redis_limits import RedisLimiter, RedisLimiters
from dreamnodes.engine.steps import RECEIVE, STALL, Step, Steps, new_token
from dreamnodes.engine.work import DONE
from dreamnodes.engine.workers import alive_workers, engine_status
from dreamnodes.errors import DreamError
from dreamnodes.execution.runner import Runner
from dreamnodes.runlog.loops import ItemResult
from dreamnodes.runlog.owner import alive
from dreamnodes.runlog.recorded import begin_recorded, run_recorded
from dreamnodes.runlog.recorded import ended as ended_with
from dreamnodes.runlog.store import RunStore

__all__ = ["CeleryEngine"]

_WATCH_EVERY = 1.0  # seconds between the watchdog's rounds
_READ_EVERY = 5.0  # seconds between looks in the run log for ends no message announced


class CeleryEngine:
    """Sends runs to Celery workers through `broker`, limits kept in Redis at `limits_url`."""

    def __init__(self, broker: str, *, limits_url: str | None = None) -> None:
        self.broker = broker
        self.app = make_app(broker)
        url = limits_url or broker
        self.redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.steps = Steps(self.redis)
        self.limiters = RedisLimiters(url)
        self._ends: dict[str, tuple[asyncio.Future[None], RunStore]] = {}
        self._queued: set[str] = set()  # awaited runs whose first step is queued (not waiting)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return "CeleryEngine(...)"  # the broker URL may carry a password

    # -- running ---------------------------------------------------------------------------

    async def run(
        self,
        runner: Runner,
        store: RunStore,
        node_id: str,
        params: Mapping[str, Any],
        context: Mapping[str, Any] | None = None,
        *,
        wait: str | None = None,
        timeout: float | None = None,
        index: int | None = None,
        unit: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run a node on the workers; its output, or the DreamError it ended with."""
        self._start()
        try:
            probe = runner.prepare(node_id, params, context)
            billable = probe.node.kind == "create" and probe.request is not None
        except DreamError:
            billable = False  # run_recorded records the error
        if not billable:  # a get or a list (or bad input): quick, done here
            return await run_recorded(
                runner, store, node_id, params, context, wait=wait, timeout=timeout,
                index=index, unit=unit, options=options,
            )  # fmt: skip
        begun = await begin_recorded(
            runner, store, node_id, params, context, wait=wait, timeout=timeout, index=index,
            unit=unit, options=options,
        )  # fmt: skip
        run_id, prepared = begun.run_id, begun.prepared
        ended = asyncio.get_running_loop().create_future()
        self._ends[run_id] = (ended, store)
        try:
            limiter = runner.scheduler
            if not isinstance(limiter, RedisLimiter):
                raise DreamError("internal_error", "the Celery engine needs the Redis limiter")
            _, family = runner.families(prepared)
            slot = await limiter.acquire(family)
            step = Step(
                run_id=run_id,
                kind="create",
                token=new_token(),
                due=time.time() + STALL,
                queued=time.time(),
                family=family,
                slot=limiter.detach(slot),
                busy=slot.waited,
                limiter=limiter.id,
                base_url=runner.base_url,
            )
            if prepared.callback is not None:
                prepared.callback.listen(lambda update: self._heard(run_id, update))
            self._queued.add(run_id)
            if not self.steps.begin(step):
                slot.release()
            else:
                self._send("create", run_id, step.token, 0.0)
            await ended
        except asyncio.CancelledError:
            with contextlib.suppress(DreamError):
                if store.get(run_id).status == "running" and self.steps.get(run_id) is None:
                    store.finish(run_id, status="interrupted", error=_STOPPED)
            raise
        except Exception as exc:  # Redis away, or no shared limiter: the run ends saying so
            if self.steps.get(run_id) is None:
                raise ended_with(store, run_id, exc) from None
            raise
        finally:
            self._ends.pop(run_id, None)
            self._queued.discard(run_id)
            if prepared.callback is not None:
                prepared.callback.close()
        record = store.get(run_id)
        if record.error is not None:
            raise DreamError(**_error_fields(record.error))
        return record.output or {}

    async def items(
        self,
        runner: Runner,
        store: RunStore,
        node_id: str,
        params: Mapping[str, Any],
        items: Sequence[Any],
        context: Mapping[str, Any] | None = None,
        *,
        wait: str | None = None,
        timeout: float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[ItemResult]:
        """One run per item (each its own unit of work), queued in order; results as they end."""
        base = dict(context or {})

        async def one(index: int, item: Any) -> ItemResult:
            try:
                output = await self.run(
                    runner, store, node_id, params, {**base, "item": item, "index": index},
                    wait=wait, timeout=timeout, index=index, options=options,
                )  # fmt: skip
            except DreamError as error:
                return ItemResult(index, item, None, error)
            return ItemResult(index, item, output, None)

        # Started in order: each takes its running slot in turn (the limiter is first come,
        # first served), so the queue holds only what the account may start.
        pending = [asyncio.ensure_future(one(i, item)) for i, item in enumerate(items)]
        try:
            for done in asyncio.as_completed(pending):
                yield await done
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def status(self) -> dict[str, Any]:
        """Workers, the queue's depth and the runs under way (for `serve`'s API and page)."""
        return engine_status(self.redis, QUEUE, len(self.steps))

    async def aclose(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.limiters.close()

    # -- inside ----------------------------------------------------------------------------

    def _send(self, kind: str, run_id: str, token: str, countdown: float) -> None:
        send_step(self.app, kind, run_id, token, countdown)

    def _heard(self, run_id: str, update: Mapping[str, Any]) -> None:
        """A callback for the run: its next look goes now (only a GET is believed)."""
        step = self.steps.get(run_id)
        if step is not None and step.kind == "poll" and step.owner is None:
            now = self.steps.resend(step)
            if now is not None:
                self._send("poll", run_id, now.token, 0.0)

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        self._tasks = [loop.create_task(self._watch()), loop.create_task(self._read_ends())]
        threading.Thread(target=self._listen, name="dreamnodes-ends", daemon=True).start()

    def _ended(self, run_id: str) -> None:
        awaited = self._ends.get(run_id)
        if awaited is not None and not awaited[0].done():
            awaited[0].set_result(None)

    def _listen(self) -> None:
        """Hear each run that ends, from the workers' channel."""
        loop = self._loop
        while not self._stop.is_set() and loop is not None and not loop.is_closed():
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(DONE)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        run_id = message["data"].decode()
                        loop.call_soon_threadsafe(self._ended, run_id)
            except (redis.RedisError, RuntimeError):
                self._stop.wait(1.0)

    async def _read_ends(self) -> None:
        """Every few seconds, the run log's word on the runs awaited (a missed message).

        Only the runs queued to the workers can have ended: a batch's runs still waiting for
        a running slot (up to a thousand a batch) are not read again and again on this loop.
        """
        while True:
            await asyncio.sleep(_READ_EVERY)
            for run_id in list(self._queued):
                awaited = self._ends.get(run_id)
                if awaited is None:
                    continue
                with contextlib.suppress(DreamError):
                    if awaited[1].get(run_id).status != "running":
                        self._ended(run_id)

    async def _watch(self) -> None:
        """Send again every step that is late or whose worker died."""
        while True:
            await asyncio.sleep(_WATCH_EVERY)
            with contextlib.suppress(redis.RedisError):
                await asyncio.to_thread(self.watch_once)

    def watch_once(self) -> list[str]:
        """One round of the watchdog: the run ids whose steps were sent again."""
        now = time.time()
        sent = []
        workers: int | None = None  # how many are alive, read once a round if needed
        for step in self.steps.all():
            late = now > step.due
            # Run by a dead worker, or waiting (its countdown) in a dead worker's hands.
            holder = step.owner or step.held_by
            orphan = holder is not None and not alive(holder, step.due, now)
            # Received by no worker although some live: lost with a worker that popped it.
            unheard = holder is None and now > (step.queued or now) + RECEIVE
            if unheard and not (late or orphan):
                workers = alive_workers(self.redis) if workers is None else workers
                unheard = workers > 0  # else it waits in the queue for one to start
            if not (late or orphan or unheard):
                continue
            again = self.steps.resend(step)
            if again is not None:
                self._send(again.kind, again.run_id, again.token, 0.0)
                sent.append(again.run_id)
        return sent


_STOPPED = {"code": "interrupted", "message": "the server stopped before the run was queued"}


def _error_fields(error: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("code", "message", "field", "status", "retryable", "generation_id", "failure_reason")
    return {k: error[k] for k in keep if k in error}
