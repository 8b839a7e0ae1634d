"""What the `nodes`, `describe` and `run` commands do (the parser lives in `cli`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from dreamnodes.catalog.package import load_package
from dreamnodes.errors import DreamError
from dreamnodes.preparation.inputs import option_labels


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    add = run.add_argument
    add("node", help="the node id (see `dreamnodes nodes`)")
    add("--params", default="{}", metavar="JSON|@FILE", help="the node's inputs")
    add("--context", default=None, metavar="JSON|@FILE", help="values for {{ }} templates")
    add(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="set one input (repeatable)"
    )
    add(
        "--wait",
        nargs="?",
        const="poll",
        default="none",
        choices=("none", "poll", "callback"),
        help="wait until a created generation ends: poll (the default for --wait) or callback",
    )
    add("--timeout", type=float, default=None, metavar="S", help="how long to wait (default 900)")
    add("--download", default=None, metavar="DIR", help="save the assets to DIR/<id>.mp4|.jpg|.png")
    add("--max-attempts", type=int, default=5, metavar="N", help="attempts per request, 1 to 5")
    add("--provider", default="luma", choices=("luma", "pixazo"))
    where = run.add_mutually_exclusive_group()
    where.add_argument(
        "--base-url", default=None, metavar="URL", help="the provider's API base URL"
    )
    where.add_argument("--sandbox", action="store_true", help="run against a built-in sandbox")
    add(
        "--dry-run",
        action="store_true",
        help="print the request and its estimated price; send nothing",
    )
    add(
        "--each",
        default=None,
        metavar="ITEMS.jsonl",
        help="run once per JSON line ({{item}}, {{index}})",
    )
    add("--concurrency", type=int, default=16, metavar="N", help="items run at once with --each")
    add("--stop-on-error", action="store_true", help="with --each: stop at the first failed item")
    add("--store", default=None, metavar="PATH", help="the run log (default $DREAMNODES_STORE)")
    add("--no-store", action="store_true", help="do not record this run")
    add(
        "--allow-private-urls",
        action="store_true",
        default=None,
        help="let downloads reach private and loopback addresses"
        " (also DREAMNODES_ALLOW_PRIVATE_URLS=1)",
    )
    add(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="rehearsals: divide the limits' minute and the poll intervals by X",
    )
    tier = run.add_argument_group(
        "account limits (Luma's Build tier by default; raise for higher tiers)"
    )
    for family, running, per_minute in (("video", 10, 20), ("image", 40, 80)):
        tier.add_argument(
            f"--{family}-concurrent",
            type=int,
            default=running,
            metavar="N",
            help=f"{family} generations running at once (default {running})",
        )
        tier.add_argument(
            f"--{family}-per-minute",
            type=int,
            default=per_minute,
            metavar="N",
            help=f"{family} creates a minute (default {per_minute})",
        )


def list_nodes(*, as_json: bool) -> int:
    pkg = load_package()
    rows = [
        {key: node.spec[key] for key in ("id", "title", "category", "action", "kind")}
        | {"providers": list(node.providers)}
        for node in pkg.nodes.values()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        print(f"{r['id']:<{width}}  {r['category']:<11}  {r['action']}")
    return 0


def describe(node_id: str, *, as_json: bool) -> int:
    pkg = load_package()
    node = pkg.node(node_id)
    if as_json:
        print(json.dumps({"node": node.spec, "input_schema": node.input_schema}, indent=2))
        return 0
    schema = node.input_schema
    labels = option_labels(schema, pkg.registry)
    required = set(schema.get("required", ()))
    print(f"{node.spec['title']} ({node.id}) - {node.spec['action']}")
    print(f"  {node.spec['description']}")
    print(f"  category: {node.spec['category']}; providers: {', '.join(node.providers) or 'local'}")
    print("fields:")
    for name, prop in schema.get("properties", {}).items():
        resolved = _resolved(prop, pkg)
        title = prop.get("title") or resolved.get("title") or name
        kind = resolved.get("type", "option" if name in labels else "any")
        flag = "required" if name in required else "optional"
        line = f"  {name:<18} {title} [{kind}, {flag}]"
        if "default" in prop:
            line += f" default {json.dumps(prop['default'])}"
        print(line)
        if name in labels:
            print(
                "      options: "
                + ", ".join(f"{title} = {json.dumps(v)}" for v, title in labels[name])
            )
        if name in node.spec.get("dynamic_options", {}):
            live = node.spec["dynamic_options"][name]
            print(f"      live options from node {live['node']} ({live['path']})")
    for rule in node.rules:
        print(f"  rule: {rule['field']}: {rule['message']}")
    return 0


def _resolved(prop: dict[str, Any], pkg: Any) -> dict[str, Any]:
    ref = prop.get("$ref")
    if not isinstance(ref, str):
        return prop
    uri, _, pointer = ref.partition("#")
    target: Any = pkg.schema(uri) if uri else {}
    for part in pointer.strip("/").split("/"):
        if part:
            target = target[part]
    return {**target, **{k: v for k, v in prop.items() if k != "$ref"}}


def read_json_arg(value: str | None, name: str) -> Any:
    """A JSON argument, given inline or as @FILE."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as problem:
            raise DreamError(
                "invalid_input", f"{name}: cannot read {value[1:]}: {problem.strerror}", field=name
            ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as problem:
        raise DreamError(
            "invalid_input", f"{name}: not valid JSON ({problem})", field=name
        ) from None
    except RecursionError:
        raise DreamError("invalid_input", f"{name}: nested too deep to read", field=name) from None


def run_params(args: argparse.Namespace) -> dict[str, Any]:
    params = read_json_arg(args.params, "params")
    if not isinstance(params, dict):
        raise DreamError("invalid_input", "params: expected a JSON object", field="params")
    for pair in args.set:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DreamError("invalid_input", f"set: expected KEY=VALUE, got {pair!r}", field="set")
        params[key] = value
    return params


@contextlib.contextmanager
def _sandbox(enabled: bool, provider: str) -> Iterator[tuple[str | None, str | None]]:
    """A sandbox on a free loopback port for the run, with its base URL and a key for it."""
    if not enabled:
        yield None, None
        return
    try:
        from dreamnodes.sandbox import Sandbox, SandboxConfig
    except ImportError:
        raise DreamError(
            "invalid_input",
            "--sandbox needs the [sandbox] extra: pip install 'dreamnodes[sandbox]'",
            field="sandbox",
        ) from None
    with Sandbox(SandboxConfig(port=0)) as sb:
        yield (sb.pixazo_url if provider == "pixazo" else sb.luma_url), "sandbox-key"


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
    policy = _policy(args.max_attempts, args.time_scale)
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
    store = None if args.no_store else _store(args.store)
    with _sandbox(args.sandbox, args.provider) as (sandbox_url, sandbox_key):
        key = sandbox_key or os.environ.get(_key_env(args.provider))
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


def _key_env(provider: str) -> str:
    env: str = load_package().credential(provider)["env"]
    return env


def _store(path: str | None) -> Any:
    from dreamnodes.runlog.store import RunStore

    secrets = [v for v in (os.environ.get("LUMA_API_KEY"), os.environ.get("PIXAZO_API_KEY")) if v]
    return RunStore(path, secrets=secrets)


async def options(args: argparse.Namespace) -> int:
    """`dreamnodes options NODE FIELD`: what a host would put in the field's dropdown."""
    from dreamnodes.cli.output import emit
    from dreamnodes.execution.live_options import live_options
    from dreamnodes.execution.runner import Runner

    with _sandbox(args.sandbox, args.provider) as (sandbox_url, sandbox_key):
        key = sandbox_key or os.environ.get(_key_env(args.provider))
        async with Runner(
            api_key=key, provider=args.provider, base_url=sandbox_url or args.base_url
        ) as runner:
            emit(await live_options(runner, args.node, args.field))
    return 0


def _policy(max_attempts: int, time_scale: float) -> Any:
    from dreamnodes.api.retry import RetryPolicy

    # A rehearsal's clock runs time_scale times faster: so do the waits between retries.
    return RetryPolicy(
        max_attempts=max_attempts, first_delay=1.0 / time_scale, max_delay=30.0 / time_scale
    )


def allow_private_urls(flag: bool | None) -> bool:
    """The flag when given, else DREAMNODES_ALLOW_PRIVATE_URLS=1."""
    if flag is not None:
        return flag
    return os.environ.get("DREAMNODES_ALLOW_PRIVATE_URLS", "").strip().lower() in ("1", "true")


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
            api_key=key or os.environ.get(_key_env(record.provider)),
            provider=record.provider,
            base_url=url or base_url or recorded_url,
            retry=_policy(int(options.get("max_attempts", 5)), scale),
            poll_scale=scale,
            allow_private_urls=allow_private_urls(None),
        ) as runner:
            return await run_recorded(
                runner,
                _store(store_path),
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

    with _sandbox(sandboxed, record.provider) as (sandbox_url, sandbox_key):
        emit(asyncio.run(again(sandbox_url, sandbox_key)))
    return 0
