"""The Celery tasks (`dreamnodes.create`, `dreamnodes.poll`) and each worker process's share.

A task is a thin shell: it hands its run id and token to its thread's `Work` and runs the
coroutine on the thread's own event loop, so that the steps of a worker's threads run side by
side, and the HTTP clients and the run log's connections are reused from task to task (the
run log, the steps and the limits are the process's, made again after a fork). While a step
runs, a thread vouches for it every few seconds (`Steps.vouch`) and marks this worker alive
for `serve`'s page (`workers.Registry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import redis
from celery.signals import task_received, worker_process_init, worker_ready

from dreamnodes.engine.celery_app import TASKS, app, send_step
from dreamnodes.engine.redis_limits import RedisLimiters
from dreamnodes.engine.runners import base_urls_from_env, warm
from dreamnodes.engine.steps import STALL, Steps
from dreamnodes.engine.work import DONE, Work
from dreamnodes.engine.workers import Registry
from dreamnodes.runlog.owner import this_owner

__all__ = ["create", "poll", "send"]


def send(kind: str, run_id: str, token: str, countdown: float) -> None:
    """Queue a run's step (from a worker; `serve` sends through its own app)."""
    send_step(app, kind, run_id, token, countdown)


_Step = Coroutine[Any, Any, None]  # Work.create or Work.poll of one run


class _Process:
    """This process's run log, steps, limits and health line, shared by its threads; each
    thread that runs steps has its own event loop and `Work` (see `work`)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        from dreamnodes.runlog.store import RunStore

        limits_url = os.environ.get("DREAMNODES_LIMITS_URL") or app.conf.broker_url
        self.redis = redis.Redis.from_url(limits_url, socket_timeout=10, socket_connect_timeout=5)
        names = ("LUMA_API_KEY", "PIXAZO_API_KEY", "LUMA_AGENTS_API_KEY")
        keys = [v for v in (os.environ.get(n) for n in names) if v]
        self.store = RunStore(os.environ.get("DREAMNODES_STORE"), secrets=keys)
        self.steps = Steps(self.redis)
        self.limiters = RedisLimiters(limits_url)
        self.base_urls = base_urls_from_env()
        self.local = threading.local()
        self.running: dict[str, str] = {}  # run id -> token of the steps run here now
        self.lock = threading.Lock()
        warm()  # before it shows up as alive: its first steps go at full speed
        self.registry = Registry(self.redis)
        threading.Thread(target=self._vouch, name="dreamnodes-vouch", daemon=True).start()

    def work(self) -> Work:
        """This thread's `Work` (its runners' HTTP clients are bound to the thread's loop)."""
        work: Work | None = getattr(self.local, "work", None)
        if work is None:
            self.local.loop = asyncio.new_event_loop()
            work = self.local.work = Work(
                self.store,
                self.steps,
                self.limiters,
                send,
                base_urls=self.base_urls,
                publish=self._publish,
            )
        return work

    def _publish(self, run_id: str) -> None:
        self.redis.publish(DONE, run_id)

    def run(self, run_id: str, token: str, step: Callable[[Work], _Step]) -> None:
        """Run one step on this thread's loop (each thread of the pool runs its own steps)."""
        work = self.work()
        with self.lock:
            self.running[run_id] = token
        try:
            self.local.loop.run_until_complete(step(work))
        finally:
            with self.lock:
                self.running.pop(run_id, None)
            self.registry.done()

    def _vouch(self) -> None:
        stop = threading.Event()
        while not stop.wait(min(2.0, STALL / 5)):
            with self.lock:
                running = dict(self.running)
            try:
                for run_id, token in running.items():
                    step = self.steps.get(run_id)
                    if step is not None and step.token == token:
                        self.steps.vouch(step)
                self.registry.seen(len(running))
            except redis.RedisError:
                continue


_process: _Process | None = None
_made = threading.Lock()


def _here() -> _Process:
    global _process
    with _made:
        if _process is None or _process.pid != os.getpid():
            _process = _Process()
        return _process


@app.task(name="dreamnodes.create")  # type: ignore[untyped-decorator]
def create(run_id: str, token: str) -> None:
    _here().run(run_id, token, lambda work: work.create(run_id, token))


@app.task(name="dreamnodes.poll")  # type: ignore[untyped-decorator]
def poll(run_id: str, token: str) -> None:
    _here().run(run_id, token, lambda work: work.poll(run_id, token))


@worker_process_init.connect  # type: ignore[untyped-decorator]
@worker_ready.connect  # type: ignore[untyped-decorator]
def _ready(**_: Any) -> None:
    """Show up in `serve`'s list of workers as soon as the process is up, not at its first
    task (warmed up: see `runners.warm`)."""
    _here()


@task_received.connect  # type: ignore[untyped-decorator]
def _received(request: Any = None, **_: Any) -> None:
    """A step's task is in this process now (a poll may wait here for its countdown): the
    step says so, so that if this process dies the watchdog sends it again at once."""
    if request is None or request.name not in TASKS.values():
        return
    args = list(request.args or ())
    if len(args) < 2:
        return
    # Redis away for a moment: the step is only found late (the watchdog's slower net).
    with contextlib.suppress(redis.RedisError):
        _here().steps.hold(str(args[0]), str(args[1]), this_owner())
