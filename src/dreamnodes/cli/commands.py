"""What the `run`, `options` and `runs retry` commands do (the parser lives in `entry`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from dreamnodes.catalog.package import load_package
from dreamnodes.cli.arguments import limits_of, run_context, run_params
from dreamnodes.cli.resources import (
    allow_private_urls,
    default_provider,
    key_env,
    open_store,
    policy_for,
    sandbox_for,
)
from dreamnodes.errors import DreamError


async def run(args: argparse.Namespace) -> int:
    from dreamnodes.cli import loop
    from dreamnodes.cli.output import emit
    from dreamnodes.execution.runner import Runner
    from dreamnodes.preparation.prepare import estimate
    from dreamnodes.runlog.recorded import run_recorded

    args.provider = default_provider(args.node, args.provider)
    params = run_params(args)
    context = run_context(args)
    # Limits checks the limit flags and the time scale, before anything runs.
    limits = limits_of(args)
    policy = policy_for(args.max_attempts, args.time_scale)
    if args.dry_run:
        if args.each:
            return loop.dry_run(args, params, context)
        emit(estimate(args.node, params, context, provider=args.provider, base_url=args.base_url))
        return 0
    wait = args.wait
    if args.download and wait is None:
        wait = _wait_to_download(args, params, context)
    store = None if args.no_store else open_store(args.store)
    async with _receiver(args) as receiver:
        scale = args.time_scale  # a rehearsal: the sandbox runs on the same fast clock
        with sandbox_for(args.sandbox, args.provider, scale) as (sandbox_url, sandbox_key):
            key = sandbox_key or os.environ.get(key_env(args.provider))
            runner = Runner(
                api_key=key,
                provider=args.provider,
                base_url=sandbox_url or args.base_url,
                retry=policy,
                limits=limits,
                poll_scale=args.time_scale,
                allow_private_urls=allow_private_urls(args.allow_private_urls),
                receiver=receiver,
            )
            # A sandbox's port is thrown away with it: the record says "sandbox", and a retry
            # starts a new one (it never sends a real key to whatever listens there later).
            recorded = {"sandbox": True, "base_url": None} if args.sandbox else {}
            async with runner:
                if args.each:
                    return await _run_each(args, runner, store, params, context, recorded, wait)
                try:
                    output = await run_recorded(
                        runner,
                        store,
                        args.node,
                        params,
                        context,
                        wait=wait,
                        timeout=args.timeout,
                        download_dir=args.download,
                        options=recorded,
                    )
                except DreamError as error:
                    raise _named(error, args, params, context) from None
                emit(output)
                return 0


def _wait_to_download(
    args: argparse.Namespace, params: dict[str, Any], context: dict[str, Any]
) -> str | None:
    """--download without --wait: a create that would return at once polls instead (there
    is nothing to download from a queued generation); a node's own wait field is kept."""
    from dreamnodes.cli.loop import BLANK, item_context, read_lines
    from dreamnodes.preparation.prepare import prepare

    if args.each:
        lines = [item for item in read_lines(args.each) if item is not BLANK]
        context = item_context(context, lines[0] if lines else None, 0)
    try:
        prepared = prepare(args.node, params, context, provider=args.provider)
    except DreamError:
        return None  # the run itself reports it
    return "poll" if prepared.node.kind == "create" and prepared.wait == "none" else None


@contextlib.asynccontextmanager
async def _receiver(args: argparse.Namespace) -> AsyncIterator[Any]:
    """The run's callback receiver when --public-url / --listen (or their environment
    variables) say how the provider reaches it; else None (the runner's own, on loopback)."""
    public_url = args.public_url or os.environ.get("DREAMNODES_PUBLIC_URL") or None
    listen = args.listen or os.environ.get("DREAMNODES_LISTEN") or None
    if public_url is None and listen is None:
        yield None
        return
    from dreamnodes.callbacks.receiver import CallbackReceiver

    host, port = "127.0.0.1", 8788 if public_url else 0
    if listen:
        name, sep, number = listen.rpartition(":")
        if not sep or not number.isdigit() or int(number) > 65535:
            raise DreamError(
                "invalid_input", f"listen: expected HOST:PORT, got {listen!r}", field="listen"
            )
        host, port = name.strip("[]") or "127.0.0.1", int(number)
    async with CallbackReceiver(host=host, port=port, public_url=public_url) as receiver:
        yield receiver


def _named(
    error: DreamError, args: argparse.Namespace, params: dict[str, Any], context: dict[str, Any]
) -> DreamError:
    """A 404 names what it could not find (the generation id the run asked for)."""
    if error.code != "not_found":
        return error
    from dreamnodes.preparation.prepare import prepare

    try:
        values = prepare(args.node, params, context, provider=args.provider).params
    except DreamError:
        return error
    ids = [str(values[k]) for k in ("generation_id", "to_generation_id") if values.get(k)]
    if ids and not any(i in error.message for i in ids):
        error.message = f"generation {' or '.join(ids)} not found: {error.message}"
    return error


async def _run_each(
    args: argparse.Namespace,
    runner: Any,
    store: Any,
    params: dict[str, Any],
    context: dict[str, Any],
    recorded: dict[str, Any],
    wait: str | None,
) -> int:
    from dreamnodes.cli import loop
    from dreamnodes.cli.progress import ProgressBar
    from dreamnodes.preparation.prepare import find_node, with_options
    from dreamnodes.runlog.recorded import run_items

    find_node(load_package(), args.node)  # an unknown node fails once, not once per item
    lines = loop.read_lines(args.each)

    def check(item: Any, place: int) -> None:
        prepared = runner.prepare(args.node, params, loop.item_context(context, item, place))
        with_options(prepared, wait=wait, timeout=args.timeout)

    problems = loop.check_all(lines, check)
    if problems:
        return loop.refuse(lines, problems)
    positions = [place for place, item in enumerate(lines) if item is not loop.BLANK]
    bar = ProgressBar(sys.stderr)
    results: AsyncIterator[Any] = run_items(
        runner,
        store,
        args.node,
        params,
        [lines[place] for place in positions],
        context,
        wait=wait,
        timeout=args.timeout,
        download_dir=args.download,
        concurrency=args.concurrency,
        stop_on_error=args.stop_on_error,
        on_progress=bar,
        options=recorded,
        positions=positions,
    )
    try:
        return await loop.report(lines, positions, results)
    finally:
        bar.close()


async def options(args: argparse.Namespace) -> int:
    """`dreamnodes options NODE FIELD`: what a host would put in the field's dropdown."""
    from dreamnodes.cli.output import emit
    from dreamnodes.execution.live_options import live_options
    from dreamnodes.execution.runner import Runner

    args.provider = default_provider(args.node, args.provider)
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
    attempts = getattr(args, "max_attempts", None) or int(options.get("max_attempts", 5))
    store_path = getattr(args, "store", None)

    async def again(url: str | None, key: str | None) -> dict[str, Any]:
        async with Runner(
            api_key=key or os.environ.get(key_env(record.provider)),
            provider=record.provider,
            base_url=url or base_url or recorded_url,
            retry=policy_for(attempts, scale),
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

    with sandbox_for(sandboxed, record.provider, scale) as (sandbox_url, sandbox_key):
        emit(asyncio.run(again(sandbox_url, sandbox_key)))
    return 0
