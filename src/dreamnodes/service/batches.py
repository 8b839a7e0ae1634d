"""Batches: one node over an array of items at the account's limits, in the background.

`run_items` does the work (each item a unit of work of its own, results in order); the
batch's items, their run ids and results are kept in memory while it runs and written to the
service's table as they come (at most once a second, and at the end), so a batch can be read
after the server restarts. A batch the server was stopped in is `interrupted`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dreamnodes.errors import DreamError
from dreamnodes.execution.runner import Runner
from dreamnodes.redact import scrub
from dreamnodes.runlog.recorded import run_items
from dreamnodes.service.envelope import RunSpec
from dreamnodes.service.ledger import MARKER, ServiceStore

if TYPE_CHECKING:
    from dreamnodes.engine.dispatch import CeleryEngine

__all__ = ["Batches"]

_SAVE_EVERY = 1.0  # seconds between writes of a running batch
_KEY_WAIT = 10.0  # seconds a second request with a key waits for the first to name its batch


class Batches:
    """The service's batches: start one, read one, stop them all."""

    def __init__(
        self,
        store: ServiceStore,
        runner_for: Callable[[str], Runner],
        *,
        sandbox_id: str | None,
        concurrency: int,
        secrets_: list[str],
        on_end: Callable[[str, str | None], None],
        engine: CeleryEngine | None = None,
    ) -> None:
        self._engine = engine
        self._store = store
        self._runner_for = runner_for
        self._sandbox_id = sandbox_id
        self._concurrency = concurrency
        self._secrets = secrets_
        self._on_end = on_end
        self._live: dict[str, dict[str, Any]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, spec: RunSpec, items: list[Any], *, key: str | None = None) -> str:
        batch_id = "b_" + secrets.token_hex(10)
        state: dict[str, Any] = {
            "id": batch_id,
            "node": spec.node,
            "status": "running",
            "notify_url": spec.notify_url,
            "items": [{"index": i, "status": "pending", "run_id": None} for i in range(len(items))],
        }
        self._live[batch_id] = state
        self._save(state)
        task = asyncio.get_running_loop().create_task(self._run(state, spec, items, key))
        self._tasks[batch_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(batch_id, None))
        return batch_id

    async def start_once(self, key: str, spec: RunSpec, items: list[Any]) -> tuple[str, bool]:
        """The batch for an idempotency key: (batch id, made by this call). A key reused for
        another request (another batch, or a run) is an input error."""
        wanted = spec.fingerprint({"batch": items})
        fingerprint = "batch:" + hashlib.sha256(wanted.encode()).hexdigest()
        mine, bound, target = self._store.claim_key(key, "batch", fingerprint)
        if bound != fingerprint:
            raise DreamError(
                "invalid_input",
                "Idempotency-Key: this key was used for another request; use a new key",
                field="Idempotency-Key",
            )
        if not mine:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + _KEY_WAIT
            while target is None and loop.time() < deadline:
                await asyncio.sleep(0.05)
                target = self._store.key_target(key)
            if target is not None and self.view(target) is not None:
                return target, False
            # The request that took the key never started its batch (the server stopped):
            # start it now; each item's unit of work still allows one generation only.
        batch_id = self.start(spec, items, key=key)
        self._store.set_key_target(key, batch_id)
        return batch_id, True

    async def _run(
        self, state: dict[str, Any], spec: RunSpec, items: list[Any], key: str | None
    ) -> None:
        marker = secrets.token_hex(8)
        slots: list[dict[str, Any]] = state["items"]

        def started(run_id: str, context: Mapping[str, Any] | None) -> None:
            index = (context or {}).get("index")
            if isinstance(index, int) and 0 <= index < len(slots):
                slots[index].update(run_id=run_id, status="running")

        options = {
            MARKER: marker,
            "batch_id": state["id"],
            **(
                {"sandbox": True, "base_url": None, "sandbox_id": self._sandbox_id}
                if self._sandbox_id
                else {}
            ),
            **({"idempotency_key": key} if key else {}),
        }
        self._store.expect(marker, started)
        saved = time.monotonic()
        runner = self._runner_for(spec.provider)
        # In-process, `concurrency` items at a time; on the engine, every item queued at once
        # (the shared limiter paces them).
        each = (
            functools.partial(run_items, concurrency=self._concurrency)
            if self._engine is None
            else self._engine.items
        )
        results = each(
            runner,
            self._store,
            spec.node,
            spec.params,
            items,
            spec.context,
            wait=spec.wait,
            timeout=spec.timeout,
            options=options,
        )
        try:
            async for result in results:
                slot = slots[result.index]
                if result.error is None:  # scrubbed once here, not at every read (`view`)
                    slot.update(status="succeeded", output=scrub(result.output, self._secrets))
                else:
                    slot.update(status="failed", error=scrub(result.error.to_dict(), self._secrets))
                if time.monotonic() - saved >= _SAVE_EVERY:
                    self._save(state)
                    saved = time.monotonic()
            failed = sum(1 for s in slots if s["status"] != "succeeded")
            state["status"] = "succeeded" if not failed else "failed"
        except asyncio.CancelledError:
            state["status"] = "interrupted"
            for slot in slots:
                if slot["status"] in ("pending", "running"):
                    slot["status"] = "interrupted"
            raise
        finally:
            self._store.forget(marker)
            self._save(state, finished=True)
            self._live.pop(state["id"], None)
        self._on_end(state["id"], spec.notify_url)

    def _save(self, state: dict[str, Any], *, finished: bool = False) -> None:
        self._store.save_batch(
            state["id"],
            node=state["node"],
            status=state["status"],
            items=state["items"],
            notify_url=state["notify_url"],
            finished=finished,
        )

    def view(self, batch_id: str) -> dict[str, Any] | None:
        """A batch with its progress and each item's run id, status and result, in order."""
        live = self._live.get(batch_id)
        found = dict(live) if live is not None else self._store.batch(batch_id)
        if found is None:
            return None
        items: list[dict[str, Any]] = found["items"]
        counts = {"total": len(items), "done": 0, "succeeded": 0, "failed": 0}
        for item in items:
            if item["status"] in ("succeeded", "failed", "interrupted"):
                counts["done"] += 1
            if item["status"] == "succeeded":
                counts["succeeded"] += 1
            elif item["status"] in ("failed", "interrupted"):
                counts["failed"] += 1
        view = {
            "id": found["id"],
            "node": found["node"],
            "status": found["status"],
            **counts,
            "links": {"self": f"/v1/batches/{found['id']}"},
        }
        result: dict[str, Any] = scrub(view, self._secrets)
        # Each item was scrubbed when it ended (`_run`) or was saved: a host reading a batch
        # of a thousand every second does not scrub a thousand results every second.
        result["items"] = items
        return result

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
