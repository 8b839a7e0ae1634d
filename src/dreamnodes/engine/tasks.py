"""The Celery tasks (`dreamnodes.create`, `dreamnodes.poll`) and each worker process's share.

A task is a thin shell: it hands its run id and token to this process's `Work` and runs the
coroutine on the process's own event loop thread (one per process, made after a fork), so the
HTTP clients and the run log's connection are reused from task to task. While a step runs, a
thread vouches for it every few seconds (`Steps.vouch`) and marks this worker alive for
`serve`'s page (`workers.Registry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Coroutine
from typing import Any

import redis
from celery.signals import task_received, worker_process_init, worker_ready

from dreamnodes.engine.celery_app import TASKS, app, send_step
from dreamnodes.engine.redis_limits import RedisLimiters
from dreamnodes.engine.runners import base_urls_from_env
from dreamnodes.engine.steps import STALL, Steps
from dreamnodes.engine.work import DONE, Work
from dreamnodes.engine.workers import Registry
from dreamnodes.runlog.owner import this_owner

__all__ = ["create", "poll", "send"]


def send(kind: str, run_id: str, token: str, countdown: float) -> None:
    """Queue a run's step (from a worker; `serve` sends through its own app)."""
    send_step(app, kind, run_id, token, countdown)


class _Process:
    """This process's loop thread and its `Work` (made on first use, again after a fork)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="dreamnodes-engine", daemon=True
        )
        self.thread.start()
        from dreamnodes.runlog.store import RunStore

        limits_url = os.environ.get("DREAMNODES_LIMITS_URL") or app.conf.broker_url
        self.redis = redis.Redis.from_url(limits_url, socket_timeout=10, socket_connect_timeout=5)
        names = ("LUMA_API_KEY", "PIXAZO_API_KEY", "LUMA_AGENTS_API_KEY")
        keys = [v for v in (os.environ.get(n) for n in names) if v]
        self.work = Work(
            RunStore(os.environ.get("DREAMNODES_STORE"), secrets=keys),
            Steps(self.redis),
            RedisLimiters(limits_url),
            send,
            base_urls=base_urls_from_env(),
            publish=self._publish,
        )
        self.work.runners.warm()  # before it shows up as alive: its first steps go at full speed
        self.registry = Registry(self.redis)
        self.running: dict[str, str] = {}  # run id -> token of the steps run here now
        self.lock = threading.Lock()
        threading.Thread(target=self._vouch, name="dreamnodes-vouch", daemon=True).start()

    def _publish(self, run_id: str) -> None:
        self.redis.publish(DONE, run_id)

    def run(self, run_id: str, token: str, step: Coroutine[Any, Any, None]) -> None:
        with self.lock:
            self.running[run_id] = token
        try:
            asyncio.run_coroutine_threadsafe(step, self.loop).result()
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
                    step = self.work.steps.get(run_id)
                    if step is not None and step.token == token:
                        self.work.steps.vouch(step)
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
    here = _here()
    here.run(run_id, token, here.work.create(run_id, token))


@app.task(name="dreamnodes.poll")  # type: ignore[untyped-decorator]
def poll(run_id: str, token: str) -> None:
    here = _here()
    here.run(run_id, token, here.work.poll(run_id, token))


@worker_process_init.connect  # type: ignore[untyped-decorator]
@worker_ready.connect  # type: ignore[untyped-decorator]
def _ready(**_: Any) -> None:
    """Show up in `serve`'s list of workers as soon as the process is up, not at its first
    task (warmed up: see `Runners.warm`)."""
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
        _here().work.steps.hold(str(args[0]), str(args[1]), this_owner())
