"""Runs recorded in the run log, and loops over arrays that resume where they stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from dreamnodes.batch import ItemResult, Progress, run_each
from dreamnodes.created import luma_find_created
from dreamnodes.errors import Attempt, DreamError
from dreamnodes.prepare import Prepared, describe_request
from dreamnodes.run import Runner
from dreamnodes.store import RunStore, resume_key


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
    resume_generation: str | None = None,
) -> dict[str, Any]:
    """Run a node, writing params, request, attempts and the outcome to the run log.

    With an ``index`` (an item of a loop), a create that an earlier run of the same loop already
    made is not sent again: that generation is picked up and waited for instead. So is
    ``resume_generation``, the generation a retried run had already made.
    """
    if store is None:
        return await runner.run(
            node_id, params, context, wait=wait, timeout=timeout, download_dir=download_dir
        )
    options = {
        "wait": wait,
        "timeout": timeout,
        "download_dir": download_dir,
        "base_url": runner.base_url,
        "max_attempts": runner.policy.max_attempts,
        "time_scale": runner.poll_scale,
    }
    record: dict[str, Any] = {
        "node": node_id,
        "provider": runner.provider,
        "params": dict(params),
        "context": dict(context) if context else None,
        "options": options,
    }
    try:
        prepared = await runner.prepare_for(node_id, params, context, wait=wait, timeout=timeout)
    except DreamError as error:
        run_id = store.start(**record)
        store.finish(run_id, error=error.to_dict())
        raise
    key = None
    if index is not None and prepared.node.kind == "create" and prepared.request is not None:
        key = resume_key(
            node_id, runner.provider, runner.base_url, index, prepared.request.json or {}
        )
    run_id = store.start(**record, resume_key=key)
    store.set_request(run_id, describe_request(prepared, runner.base_url))
    attempts: list[Attempt] = []
    try:
        existing = resume_generation
        if existing is None and key is not None:
            existing = await _created_before(runner, store, key, run_id, prepared)
        if existing is not None:
            store.set_generation(run_id, existing)
        output = await runner.execute(
            prepared,
            download_dir=download_dir,
            existing_id=existing,
            on_created=lambda generation_id: store.set_generation(run_id, generation_id),
            attempts=attempts,
        )
    except DreamError as error:
        store.add_attempts(run_id, attempts or error.attempts)
        store.finish(run_id, error=error.to_dict())
        raise
    store.add_attempts(run_id, attempts)
    store.finish(run_id, output=output)
    return output


async def _created_before(
    runner: Runner, store: RunStore, key: str, run_id: str, prepared: Prepared
) -> str | None:
    """The generation an earlier run of this loop item made, recorded or lost.

    A recorded one is picked up (also when it failed: a loop run again never pays twice; retry
    the run to try again). A run that never recorded one may have lost its create's answer:
    Luma is asked before anything is sent again.
    """
    recorded = store.generation_for(key, include_failed=True)
    if recorded is not None or runner.provider != "luma" or prepared.request is None:
        return recorded
    since = store.unanswered_since(key, excluding=run_id)
    if since is None:
        return None
    found = await luma_find_created(runner.client, prepared.request, since)
    return None if found is None else str(found["id"])


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
) -> AsyncIterator[ItemResult]:
    """Run a node once per item (``{{item...}}``, ``{{index}}`` in params), results in order."""
    base = dict(context or {})

    async def one(index: int, item: Any) -> dict[str, Any]:
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
        )

    async for result in run_each(
        items, one, concurrency=concurrency, stop_on_error=stop_on_error, on_progress=on_progress
    ):
        yield result
