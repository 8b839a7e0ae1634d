"""Runs recorded in the run log, each create done exactly once; loops that resume."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dreamnodes.errors import Attempt, DreamError
from dreamnodes.execution.runner import Runner
from dreamnodes.preparation.prepare import Prepared, describe_request
from dreamnodes.redact import scrub_text
from dreamnodes.runlog.loops import ItemResult, Progress, run_each
from dreamnodes.runlog.once import exactly_once
from dreamnodes.runlog.store import RunStore, resume_key

if TYPE_CHECKING:
    import httpx

    from dreamnodes.api.retry import RetryPolicy


async def run_recorded(
    runner: Runner,
    store: RunStore | None,
    node_id: str,
    params: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
    *,
    wait: str | None = None,
    timeout: float | None = None,
    download_dir: str | None = None,
    index: int | None = None,
    unit: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run a node, writing params, request, attempts and the outcome to the run log.

    A create is one unit of work, done exactly once (see `dreamnodes.runlog.reservations`):
    the run's own, a loop item's (``index``: the same item of the same loop, run again, is the same
    unit), or the ``unit`` key given (`runs retry` continues the unit of the run it retries).
    ``options`` are recorded beside the run's own (e.g. that it ran against a sandbox).
    """
    if store is None:
        return await runner.run(
            node_id, params, context, wait=wait, timeout=timeout, download_dir=download_dir
        )
    begun = await begin_recorded(
        runner,
        store,
        node_id,
        params,
        context,
        wait=wait,
        timeout=timeout,
        download_dir=download_dir,
        index=index,
        unit=unit,
        options=options,
    )
    run_id, prepared, key = begun.run_id, begun.prepared, begun.key
    attempts: list[Attempt] = []
    try:
        if begun.billable:
            output = await exactly_once(
                runner, store, key, run_id, prepared, download_dir, attempts
            )
        else:
            output = await runner.execute(prepared, download_dir=download_dir, attempts=attempts)
    except (asyncio.CancelledError, KeyboardInterrupt):
        store.add_attempts(run_id, attempts)
        store.finish(
            run_id,
            error={"code": "interrupted", "message": "the run was stopped (Ctrl-C or SIGTERM)"},
            status="interrupted",
        )
        raise
    except Exception as exc:
        store.add_attempts(run_id, attempts or getattr(exc, "attempts", []))
        raise ended(store, run_id, exc) from None
    store.add_attempts(run_id, attempts)
    store.finish(run_id, output=output)
    return output


@dataclass(frozen=True)
class Begun:
    """A run recorded and prepared, its create not sent yet."""

    run_id: str
    prepared: Prepared
    key: str  # its unit of work
    billable: bool


async def begin_recorded(
    runner: Runner,
    store: RunStore,
    node_id: str,
    params: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
    *,
    wait: str | None = None,
    timeout: float | None = None,
    download_dir: str | None = None,
    index: int | None = None,
    unit: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Begun:
    """Prepare a run and record it as started (a failure to prepare is recorded and raised).

    The first half of `run_recorded`; the Celery engine sends the rest to its workers.
    """
    record: dict[str, Any] = {
        "node": node_id,
        "provider": runner.provider,
        "params": dict(params),
        "context": dict(context) if context else None,
        "options": {
            "wait": wait,
            "timeout": timeout,
            "download_dir": download_dir,
            "base_url": runner.base_url,
            "max_attempts": runner.policy.max_attempts,
            "time_scale": runner.poll_scale,
            **(options or {}),
        },
    }
    try:
        prepared = await runner.prepare_for(node_id, params, context, wait=wait, timeout=timeout)
    except DreamError as error:
        run_id = store.start(**record)
        store.finish(run_id, error=error.to_dict())
        raise
    except Exception as exc:  # a bug in preparing must still leave a record and a clear error
        run_id = store.start(**record)
        raise ended(store, run_id, exc) from None
    billable = prepared.node.kind == "create" and prepared.request is not None
    key = unit
    if key is None and index is not None and billable and prepared.request is not None:
        key = resume_key(
            node_id, runner.provider, runner.base_url, index, prepared.request.json or {}
        )
    run_id = store.start(**record, resume_key=key)
    store.set_request(run_id, describe_request(prepared, runner.base_url))
    return Begun(run_id, prepared, key or f"run:{run_id}", billable)


def ended(store: RunStore, run_id: str, exc: Exception) -> DreamError:
    """Record a run's failure; an unexpected exception becomes `internal_error`."""
    if isinstance(exc, DreamError):
        error = exc
    else:
        what = scrub_text(f"{type(exc).__name__}: {exc}", store.secrets, "***")
        error = DreamError(
            "internal_error", f"internal error ({what}); the run log keeps what was known"
        )
    store.finish(run_id, error=error.to_dict())
    return error


async def run_items(
    runner: Runner,
    store: RunStore | None,
    node_id: str,
    params: Mapping[str, Any],
    items: Sequence[Any],
    context: Mapping[str, Any] | None = None,
    *,
    wait: str | None = None,
    timeout: float | None = None,
    download_dir: str | None = None,
    concurrency: int = 16,
    stop_on_error: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    options: Mapping[str, Any] | None = None,
    positions: Sequence[int] | None = None,
) -> AsyncIterator[ItemResult]:
    """Run a node once per item (``{{item...}}``, ``{{index}}`` in params), results in order.

    ``positions`` gives each item's own index (``{{index}}`` and its unit of work) when the
    items are not all the places of the input (the command line keeps blank lines' places).
    """
    base = dict(context or {})

    async def one(place: int, item: Any) -> dict[str, Any]:
        index = place if positions is None else positions[place]
        return await run_recorded(
            runner,
            store,
            node_id,
            params,
            {**base, "item": item, "index": index},
            wait=wait,
            timeout=timeout,
            download_dir=download_dir,
            index=index,
            options=options,
        )

    async for result in run_each(
        items, one, concurrency=concurrency, stop_on_error=stop_on_error, on_progress=on_progress
    ):
        yield result


async def run_node(
    node_id: str,
    params: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
    *,
    store: RunStore | str | None = None,
    api_key: str | None = None,
    provider: str = "luma",
    base_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | Mapping[str, Any] | None = None,
    wait: str | None = None,
    timeout: float | None = None,
    download_dir: str | None = None,
    allow_private_urls: bool = False,
) -> dict[str, Any]:
    """Run one node once: the Python API for hosts (see also Runner and run_items for loops).

    With a ``store`` (a RunStore or a path), the run is recorded and its create goes through
    the durable exactly-once protocol; without, lost answers are still looked for in-process.
    """
    log = RunStore(store) if isinstance(store, str) else store
    try:
        async with Runner(
            api_key=api_key,
            provider=provider,
            base_url=base_url,
            transport=transport,
            retry=retry,
            allow_private_urls=allow_private_urls,
        ) as runner:
            return await run_recorded(
                runner,
                log,
                node_id,
                params,
                context,
                wait=wait,
                timeout=timeout,
                download_dir=download_dir,
            )
    finally:
        if isinstance(store, str) and log is not None:
            log.close()


def run_node_sync(
    node_id: str,
    params: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """``run_node`` for callers without an event loop."""
    return asyncio.run(run_node(node_id, params, context, **options))
