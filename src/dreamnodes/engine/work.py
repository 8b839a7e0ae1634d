"""What a worker process does for one step of a run: a create, or one look at a generation.

Each step is short and never waits inside a worker slot: a create goes through the run log's
exactly-once protocol (`runlog.recorded.exactly_once`) and hands the run on to a poll; a poll
looks once and, unless the generation ended, hands the run on to the next poll with a countdown.
Every hand-over is a compare-and-set on the run's step (`steps`), so a duplicate delivery, a
redelivered task or a step the watchdog sent again never acts twice. The running slot taken by
`serve` is renewed at each look and released when the generation ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dreamnodes.api import answers
from dreamnodes.engine.redis_limits import RedisLimiter, RedisLimiters
from dreamnodes.engine.runners import Runners
from dreamnodes.engine.steps import STALL, Step, Steps
from dreamnodes.errors import Attempt, DreamError
from dreamnodes.execution.runner import Runner
from dreamnodes.execution.waiting import busy_delay, failed, schedule_for, still_running
from dreamnodes.preparation.prepare import Prepared, with_options
from dreamnodes.runlog.once import exactly_once
from dreamnodes.runlog.owner import this_owner
from dreamnodes.runlog.recorded import ended
from dreamnodes.runlog.store import RunRecord, RunStore

__all__ = ["DONE", "Send", "Work"]

DONE = "dreamnodes:engine:done"  # a channel naming each run that ended
HELD_AGAIN = 1.0  # seconds before a create whose unit another worker holds is tried again

# (task name, run id, token, countdown in seconds)
Send = Callable[[str, str, str, float], None]


class Work:
    """One worker process's share: its run log, its runners, the steps and the limits."""

    def __init__(
        self,
        store: RunStore,
        steps: Steps,
        limiters: RedisLimiters,
        send: Send,
        *,
        base_urls: tuple[str, ...] = (),
        publish: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.steps = steps
        self.limiters = limiters
        self.send = send
        self.runners = Runners(base_urls)
        self.publish = publish or (lambda run_id: None)

    async def aclose(self) -> None:
        await self.runners.aclose()

    # -- the two steps -----------------------------------------------------------------

    async def create(self, run_id: str, token: str) -> None:
        """Send the run's create (exactly once), then hand the run on to its first poll."""
        step = self.steps.take(run_id, token, this_owner())
        if step is None:
            return  # sent again by the watchdog, or already done: the other task goes on
        record = self._record(run_id)
        if record.status != "running":
            self._end(step, record, None, None)
            return
        attempts: list[Attempt] = []
        try:
            runner = self._runner(record, step)
            prepared = self._prepared(runner, record)
            output = await exactly_once(
                runner, self.store, record.resume_key or f"run:{run_id}", run_id,
                with_options(prepared, wait="none"), None, attempts, patience=0.0,
            )  # fmt: skip
        except DreamError as error:
            if error.code == "unknown_outcome" and error.retryable:  # a live worker holds it
                following = self.steps.next(step, due=time.time() + HELD_AGAIN + STALL)
                if following is not None:
                    self.send("create", run_id, following.token, HELD_AGAIN)
                return
            self.store.add_attempts(run_id, attempts or error.attempts)
            self._end(step, record, None, error, refused=error.code == "rate_limited")
            return
        except Exception as exc:  # a bug: the run ends internal_error, the slot is freed
            self.store.add_attempts(run_id, attempts)
            self._end(step, record, None, exc)
            return
        self.store.add_attempts(run_id, attempts)
        self._slot(step, "answered")
        await self._after_look(step, record, runner, prepared, output, first=True)

    async def poll(self, run_id: str, token: str) -> None:
        """Look at the run's generation once; end the run, or hand it on to the next look."""
        step = self.steps.take(run_id, token, this_owner())
        if step is None or step.generation_id is None:
            return
        record = self._record(run_id)
        runner = self._runner(record, step)
        output: dict[str, Any] = {"id": step.generation_id, "state": "queued"}
        try:
            output = await runner.get(step.generation_id)
        except DreamError as error:
            if not error.retryable:
                self._end(step, record, None, error)
                return  # else: a failed look is one more poll
        prepared = self._prepared(runner, record)
        await self._after_look(step, record, runner, prepared, output, first=False)

    # -- hand-overs ------------------------------------------------------------------------

    async def _after_look(
        self,
        step: Step,
        record: RunRecord,
        runner: Runner,
        prepared: Prepared,
        output: dict[str, Any],
        *,
        first: bool,
    ) -> None:
        now = time.time()
        state = output.get("state")
        if first:
            hold_only = prepared.wait == "none"
            step = replace(
                step,
                generation_id=str(output["id"]),
                deadline=None if hold_only else now + prepared.timeout,
                hold_only=hold_only,
                answered=now,
            )
            if hold_only:
                self.store.finish(record.id, output=output)  # answered now; the slot stays held
                self.publish(record.id)
        if state in answers.TERMINAL:
            error = failed(output) if state == "failed" else None
            if state == "completed" and not first:
                self._ran(step, now)
            self._end(step, record, None if error else output, error)
            return
        if step.deadline is not None and now >= step.deadline:
            waited = now - (step.deadline - prepared.timeout)
            self._end(step, record, None, still_running(output, prepared.timeout, waited))
            return
        family, _ = runner.families(prepared)
        schedule = schedule_for(
            family,
            prepared.provider.spec.get("poll"),
            runner.poll_scale,
            callback=prepared.wait == "callback" and not step.hold_only,
            timeout=prepared.timeout,
        )
        delay = schedule[min(step.polls, len(schedule) - 1)]
        busy, answered = self._busy(step, callback=prepared.wait == "callback"), step.answered
        if busy is not None and answered is not None:  # its end frees a slot sooner
            step = replace(step, busy=True)
            delay = busy_delay(delay, now - answered, busy.shortest(step.family))
        if step.deadline is not None:
            delay = max(0.0, min(delay, step.deadline - now))  # one last look at the deadline
        self._slot(step, "renew")
        due = now + delay + STALL
        following = self.steps.next(step, kind="poll", polls=step.polls + 1, due=due)
        if following is not None:
            self.send("poll", record.id, following.token, delay)

    def _end(
        self,
        step: Step,
        record: RunRecord,
        output: dict[str, Any] | None,
        error: BaseException | None,
        *,
        refused: bool = False,
    ) -> None:
        """The run's last step: only the task still holding the step ends it."""
        if not self.steps.swap(step, None):
            return
        self._slot(step, "refused" if refused else "release")
        if step.hold_only or record.status != "running":
            return
        if error is None:
            self.store.finish(record.id, output=output)
        elif isinstance(error, Exception):
            ended(self.store, record.id, error)
        self.publish(record.id)

    def _busy(self, step: Step, *, callback: bool) -> RedisLimiter | None:
        """The limits of the step's slot if its account is (or was) saturated."""
        if step.slot is None or step.limiter is None or (callback and not step.hold_only):
            return None  # (a callback wakes the wait anyway)
        limiter = self.limiters.by_id(step.limiter)
        return limiter if step.busy or limiter.saturated(step.family) else None

    def _ran(self, step: Step, now: float) -> None:
        if step.limiter is not None and step.answered is not None:
            self.limiters.by_id(step.limiter).ran(step.family, now - step.answered)

    def _slot(self, step: Step, what: str) -> None:
        if step.slot is None or step.limiter is None:
            return
        limiter = self.limiters.by_id(step.limiter)
        if what == "renew":
            limiter.renew(step.family, step.slot)
            return
        slot = limiter.adopt(step.family, step.slot)
        getattr(slot, what)()

    # -- resources ---------------------------------------------------------------------

    def _record(self, run_id: str) -> RunRecord:
        """The run, owned by this process while it runs a step (so that the run shows as
        running, not abandoned, while `serve` is down and the workers go on)."""
        record = self.store.get(run_id)
        if record.status == "running" and record.owner != this_owner():
            self.store.hold(run_id)
        return record

    def _runner(self, record: RunRecord, step: Step) -> Runner:
        """The run's runner; its 429s are learned in the limits the run's slot is in."""
        limits = None if step.limiter is None else self.limiters.by_id(step.limiter)
        base_url = step.base_url or record.options.get("base_url")
        return self.runners.of(record.provider, base_url, record.options, limits)

    def _prepared(self, runner: Runner, record: RunRecord) -> Prepared:
        """The run's call, prepared again from what the run log holds (no wait inside)."""
        options = record.options
        prepared = with_options(
            runner.prepare(record.node, record.params, record.context),
            wait=options.get("wait"),
            timeout=options.get("timeout"),
        )
        # Waiting for callbacks: `serve` registered the URL; the recorded request carries it.
        body = (record.request or {}).get("body") or {}
        callback_url = body.get("callback_url") if prepared.wait == "callback" else None
        plan = prepared.provider.plan
        if callback_url and plan is not None:
            values = {**prepared.params, "callback_url": callback_url}
            prepared = replace(prepared, params=values, request=plan.build(values))
        return prepared
