"""Runs started in the background through the run log's exactly-once protocol, and their views.

`start` answers with the run's id as soon as `run_recorded` has recorded it (before its create
is sent); the run goes on as a task of the server's event loop. An `Idempotency-Key` becomes
the run's unit of work (`idem:<key>`) and is mapped to the run durably, so a second POST
with the key answers with the first run and the reservation makes sure no second generation
is ever made, across restarts too. `retry` continues a run's unit as `runs retry` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dreamnodes.errors import DreamError
from dreamnodes.execution.runner import Runner
from dreamnodes.preparation.prepare import with_options
from dreamnodes.redact import scrub
from dreamnodes.runlog.recorded import run_recorded
from dreamnodes.runlog.store import RunRecord
from dreamnodes.service.envelope import RunSpec
from dreamnodes.service.ledger import MARKER, ServiceStore

if TYPE_CHECKING:
    from dreamnodes.engine.dispatch import CeleryEngine

__all__ = ["Runs", "run_view"]

_KEY_WAIT = 10.0  # seconds a second request with a key waits for the first to name its run


def run_view(
    record: RunRecord, secrets_: list[str], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A run as callers see it: no provider key anywhere, links to follow."""
    options = record.options
    status = record.shown_status
    links = {"self": f"/v1/runs/{record.id}", "page": f"/#run-{record.id}"}
    if status in ("failed", "interrupted", "abandoned"):
        links["retry"] = f"/v1/runs/{record.id}/retry"
    view = {
        "id": record.id,
        "node": record.node,
        "provider": record.provider,
        "status": status,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "seconds": record.seconds,
        "generation_id": record.generation_id,
        "output": record.output,
        "error": record.error,
        "params": record.params,
        "context": record.context,
        "wait": options.get("wait"),
        "retry_of": options.get("retry_of"),
        "batch_id": options.get("batch_id"),
        "notify_url": options.get("notify_url"),
        "idempotency_key": options.get("idempotency_key"),
        "attempts": len(record.attempts),
        "links": links,
        **(extra or {}),
    }
    scrubbed: dict[str, Any] = scrub(view, secrets_)
    return scrubbed


class Runs:
    """The service's runs: start, wait for, retry; one task per running run."""

    def __init__(
        self,
        store: ServiceStore,
        runner_for: Callable[[str], Runner],
        *,
        sandbox_id: str | None,
        on_end: Callable[[str, str | None], None],
        callbacks_ok: bool = True,
        engine: CeleryEngine | None = None,
    ) -> None:
        self._callbacks_ok = callbacks_ok
        self._engine = engine
        self._store = store
        self._runner_for = runner_for
        self._sandbox_id = sandbox_id
        self._on_end = on_end
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._starting: set[asyncio.Task[None]] = set()

    def check(self, spec: RunSpec) -> None:
        """The params checked as the command line checks them (DreamError naming the field)."""
        runner = self._runner_for(spec.provider)
        prepared = with_options(
            runner.prepare(spec.node, spec.params, spec.context),
            wait=spec.wait,
            timeout=spec.timeout,
        )
        if prepared.wait == "callback" and not self._callbacks_ok:
            raise DreamError(
                "invalid_input",
                "wait: callback needs a server started with --public-url (the provider must"
                " reach the callback receiver); use poll",
                field="wait",
            )

    async def start(
        self,
        spec: RunSpec,
        *,
        unit: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> str:
        """Start the run in the background; its id once the run log has it."""
        runner = self._runner_for(spec.provider)
        marker = secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        started: asyncio.Future[str] = loop.create_future()

        def announced(run_id: str, context: Mapping[str, Any] | None) -> None:
            if not started.done():
                started.set_result(run_id)

        recorded = {
            MARKER: marker,
            "notify_url": spec.notify_url,
            **(
                {"sandbox": True, "base_url": None, "sandbox_id": self._sandbox_id}
                if self._sandbox_id
                else {}
            ),
            **(options or {}),
        }
        self._store.expect(marker, announced)
        task = loop.create_task(self._run(runner, spec, unit, recorded, started))
        self._starting.add(task)
        try:
            waiters: set[asyncio.Future[Any]] = {started, task}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._store.forget(marker)
            self._starting.discard(task)
        if not started.done():
            task.result()  # raises what stopped it before a run was recorded
            raise DreamError("internal_error", "the run ended before it was recorded")
        run_id = started.result()
        if not task.done():
            self._tasks[run_id] = task
            task.add_done_callback(lambda _: self._tasks.pop(run_id, None))
        return run_id

    async def _run(
        self,
        runner: Runner,
        spec: RunSpec,
        unit: str | None,
        options: Mapping[str, Any],
        started: asyncio.Future[str],
    ) -> None:
        run = run_recorded if self._engine is None else self._engine.run
        with contextlib.suppress(DreamError):  # recorded in the run log
            await run(
                runner,
                self._store,
                spec.node,
                spec.params,
                spec.context,
                wait=spec.wait,
                timeout=spec.timeout,
                unit=unit,
                options=options,
            )
        if started.done():
            self._on_end(started.result(), spec.notify_url)

    async def wait(self, run_id: str, seconds: float) -> None:
        """Hold on until the run ends or `seconds` pass (the run goes on either way)."""
        task = self._tasks.get(run_id)
        if task is not None and seconds > 0:
            await asyncio.wait({task}, timeout=seconds)

    async def start_once(self, key: str, spec: RunSpec) -> tuple[str, bool]:
        """The run for an idempotency key: (run id, made by this call). A key reused for
        another request is an input error."""
        mine, fingerprint, target = self._store.claim_key(key, "run", spec.fingerprint())
        if fingerprint != spec.fingerprint():
            raise DreamError(
                "invalid_input",
                "Idempotency-Key: this key was used for another request; use a new key",
                field="Idempotency-Key",
            )
        unit = f"idem:{key}"
        if not mine:
            deadline = asyncio.get_running_loop().time() + _KEY_WAIT
            while target is None and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
                target = self._store.key_target(key) or self._store.run_with_unit(unit)
            if target is not None:
                return target, False
            # The request that took the key never started its run (the server stopped):
            # start it now; the unit's reservation still allows one generation only.
        run_id = await self.start(spec, unit=unit, options={"idempotency_key": key})
        self._store.set_key_target(key, run_id)
        return run_id, True

    async def retry(self, run_id: str, *, timeout: float | None = None) -> str:
        """`runs retry` over HTTP: the run's unit again, picking up what it had made."""
        record = self._store.get(run_id)
        status = record.shown_status
        if status == "succeeded" or status == "running":
            raise DreamError(
                "invalid_input",
                f"run {record.id} {'succeeded' if status == 'succeeded' else 'is still running'};"
                " only a failed, interrupted or abandoned run can be retried",
                field="id",
            )
        options = record.options
        runner = self._runner_for(record.provider)
        if options.get("sandbox"):
            same = options.get("sandbox_id") == self._sandbox_id and self._sandbox_id is not None
            unit = record.resume_key if same else None  # another sandbox knows nothing of it
        else:
            recorded_url = str(options.get("base_url") or runner.base_url).rstrip("/")
            if self._sandbox_id or recorded_url != runner.base_url.rstrip("/"):
                raise DreamError(
                    "invalid_input",
                    f"base_url: run {record.id} was sent to {recorded_url}; this server sends"
                    f" to {'a sandbox' if self._sandbox_id else runner.base_url} only",
                    field="base_url",
                )
            unit = record.resume_key
        if (record.error or {}).get("code") == "generation_failed":
            unit = f"retry:{record.id}"  # that generation failed: a new one is owed
        spec = RunSpec(
            node=record.node,
            params=record.params,
            context=record.context or {},
            wait=options.get("wait"),
            timeout=options.get("timeout") if timeout is None else timeout,
            provider=record.provider,
            notify_url=options.get("notify_url"),
        )
        return await self.start(spec, unit=unit, options={"retry_of": record.id})

    async def aclose(self) -> None:
        """Stop every run: each is recorded `interrupted`."""
        tasks = [*self._tasks.values(), *self._starting]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
