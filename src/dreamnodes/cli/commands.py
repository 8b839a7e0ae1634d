"""What the `run`, `options` and `runs retry` commands do (the parser lives in `entry`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from dreamnodes.catalog.package import load_package
from dreamnodes.cli.arguments import read_json_arg, run_params
from dreamnodes.cli.resources import (
    allow_private_urls,
    key_env,
    open_store,
    policy_for,
    sandbox_for,
)
from dreamnodes.errors import DreamError


async def run(args: argparse.Namespace) -> int:
    from dreamnodes.api.limits import Limits
    from dreamnodes.cli.output import emit
    from dreamnodes.execution.runner import Runner
    from dreamnodes.preparation.prepare import estimate
    from dreamnodes.runlog.recorded import run_items, run_recorded

    params = run_params(args)
    context = read_json_arg(args.context, "context")
    context = {} if context is None else context
    if not isinstance(context, dict):
        raise DreamError("invalid_input", "context: expected a JSON object", field="context")
    # Limits checks the limit flags and the time scale, before anything runs.
    limits = Limits(
        video_concurrent=args.video_concurrent,
        video_per_minute=args.video_per_minute,
        image_concurrent=args.image_concurrent,
        image_per_minute=args.image_per_minute,
    ).scaled(args.time_scale)
    policy = policy_for(args.max_attempts, args.time_scale)
    if args.dry_run:
        if args.each:
            from dreamnodes.cli.progress import read_items

            for index, item in enumerate(read_items(args.each)):
                emit(
                    estimate(
                        args.node,
                        params,
                        {**context, "item": item, "index": index},
                        provider=args.provider,
                        base_url=args.base_url,
                    )
                )
            return 0
        emit(estimate(args.node, params, context, provider=args.provider, base_url=args.base_url))
        return 0
    store = None if args.no_store else open_store(args.store)
    with sandbox_for(args.sandbox, args.provider) as (sandbox_url, sandbox_key):
        key = sandbox_key or os.environ.get(key_env(args.provider))
        runner = Runner(
            api_key=key,
            provider=args.provider,
            base_url=sandbox_url or args.base_url,
            retry=policy,
            limits=limits,
            poll_scale=args.time_scale,
            allow_private_urls=allow_private_urls(args.allow_private_urls),
        )
        # A sandbox's port is thrown away with it: the record says "sandbox", and a retry
        # starts a new one (it never sends a real key to whatever listens there later).
        recorded = {"sandbox": True, "base_url": None} if args.sandbox else {}
        async with runner:
            if not args.each:
                output = await run_recorded(
                    runner,
                    store,
                    args.node,
                    params,
                    context,
                    wait=args.wait,
                    timeout=args.timeout,
                    download_dir=args.download,
                    options=recorded,
                )
                emit(output)
                return 0
            return await _run_each(args, runner, store, params, context, run_items, recorded)


async def _run_each(
    args: argparse.Namespace,
    runner: Any,
    store: Any,
    params: dict[str, Any],
    context: dict[str, Any],
    run_items: Any,
    recorded: dict[str, Any],
) -> int:
    from dreamnodes.cli.progress import ProgressBar, read_items

    load_package().node(args.node)  # an unknown node fails once, not once per item
    items = read_items(args.each)
    bar = ProgressBar(sys.stderr)
    failed = 0
    results: AsyncIterator[Any] = run_items(
        runner,
        store,
        args.node,
        params,
        items,
        context,
        wait=args.wait,
        timeout=args.timeout,
        download_dir=args.download,
        concurrency=args.concurrency,
        stop_on_error=args.stop_on_error,
        on_progress=bar,
        options=recorded,
    )
    try:
        async for result in results:
            if result.error is not None:
                failed += 1
                line: dict[str, Any] = {"error": result.error.to_dict()}
            else:
                line = result.output
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
            sys.stdout.flush()
    finally:
        bar.close()
    if failed:
        sys.stderr.write(f"dreamnodes: {failed} of {len(items)} items failed\n")
        return 1
    return 0


async def options(args: argparse.Namespace) -> int:
    """`dreamnodes options NODE FIELD`: what a host would put in the field's dropdown."""
    from dreamnodes.cli.output import emit
    from dreamnodes.execution.live_options import live_options
    from dreamnodes.execution.runner import Runner

    with sandbox_for(args.sandbox, args.provider) as (sandbox_url, sandbox_key):
        key = sandbox_key or os.environ.get(key_env(args.provider))
        async with Runner(
            api_key=key, provider=args.provider, base_url=sandbox_url or args.base_url
        ) as runner:
            emit(await live_options(runner, args.node, args.field))
    return 0


def rerun(record: Any, args: argparse.Namespace) -> int:
    """`dreamnodes runs retry ID`: the run's unit of work again, through the same protocol.

    The generation the run made (it timed out waiting, the network failed while polling, the
    run was killed, its create's answer was lost) is picked up or looked for, never paid for
    again; only a generation that failed is made anew (a unit of its own, `retry:<run id>`).
    Your key goes to the provider's own API, or to the URL named in this command; a sandbox
    run is retried against a new sandbox.
    """
    import asyncio

    from dreamnodes.cli.output import emit
    from dreamnodes.execution.runner import Runner
    from dreamnodes.runlog.recorded import run_recorded

    options = record.options
    sandboxed = bool(options.get("sandbox")) or bool(getattr(args, "sandbox", False))
    recorded_url = options.get("base_url")
    own_url = load_package().manifest["providers"][record.provider]["base_url"]
    base_url = getattr(args, "base_url", None)
    if (
        not sandboxed
        and base_url is None
        and recorded_url
        and recorded_url.rstrip("/") != own_url.rstrip("/")
    ):
        raise DreamError(
            "invalid_input",
            f"base_url: run {record.id} was sent to {recorded_url}, not to {record.provider}'s"
            f" API ({own_url}); your key is only sent to a URL named in this command: add"
            f" --base-url {recorded_url} (or --sandbox)",
            field="base_url",
        )
    scale = float(options.get("time_scale", 1.0))
    if sandboxed:
        unit = None  # a new sandbox knows nothing of the old one's generations
    elif (record.error or {}).get("code") == "generation_failed":
        unit = f"retry:{record.id}"
    else:
        unit = record.resume_key
    timeout = getattr(args, "timeout", None)
    store_path = getattr(args, "store", None)

    async def again(url: str | None, key: str | None) -> dict[str, Any]:
        async with Runner(
            api_key=key or os.environ.get(key_env(record.provider)),
            provider=record.provider,
            base_url=url or base_url or recorded_url,
            retry=policy_for(int(options.get("max_attempts", 5)), scale),
            poll_scale=scale,
            allow_private_urls=allow_private_urls(None),
        ) as runner:
            return await run_recorded(
                runner,
                open_store(store_path),
                record.node,
                record.params,
                record.context,
                wait=options.get("wait"),
                timeout=options.get("timeout") if timeout is None else timeout,
                download_dir=options.get("download_dir"),
                unit=unit,
                options={"retry_of": record.id}
                | ({"sandbox": True, "base_url": None} if sandboxed else {}),
            )

    with sandbox_for(sandboxed, record.provider) as (sandbox_url, sandbox_key):
        emit(asyncio.run(again(sandbox_url, sandbox_key)))
    return 0
