"""`dreamnodes sandbox serve` (and `python -m dreamnodes.sandbox serve`)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from dreamnodes.sandbox import agents, luma
from dreamnodes.sandbox.app import LIMITS, SERVER_NAME, SandboxApp
from dreamnodes.sandbox.config import SandboxConfig
from dreamnodes.serving import Server, raise_fd_limit

_FAULT_KINDS = ("429", "5xx", "drop_before", "drop_after", "slow", "truncated")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    d = SandboxConfig()
    add = parser.add_argument
    add("--host", default=d.host)
    add("--port", type=int, default=8787, help="0 picks a free port (default 8787)")
    add("--api-key", default=None, help="accept only this key (default: any non-empty key)")
    add("--time-scale", type=float, default=d.time_scale, help="speed up phases and limits")
    add("--queued-seconds", type=float, default=d.queued_seconds)
    add("--dreaming-seconds", type=float, default=d.dreaming_seconds)
    add("--image-seconds", type=float, default=d.image_seconds)
    add("--no-limits", action="store_true", help="turn the account limits off")
    add("--video-concurrent", type=int, default=d.video_concurrent)
    add("--video-per-minute", type=int, default=d.video_per_minute)
    add("--image-concurrent", type=int, default=d.image_concurrent)
    add("--image-per-minute", type=int, default=d.image_per_minute)
    add("--faults", type=float, default=0.0, help="share of requests faulted, spread over kinds")
    for kind in _FAULT_KINDS:
        add(f"--fault-{kind.replace('_', '-')}", type=float, default=None, metavar="RATE")
    add("--slow-seconds", type=float, default=d.slow_seconds)
    add("--fault-seed", type=int, default=d.fault_seed)
    add("--full-size", action="store_true", help="render at the requested resolution")
    add("--no-render", action="store_true", help="serve placeholder assets")
    add("--db", default=None, metavar="FILE", help="keep generations in SQLite")
    add("--credits", type=float, default=d.credits_cents, help="starting balance, US cents")
    add("--agents-per-minute", type=int, default=d.agents_per_minute, help="Agents API RPM")
    add("--agents-concurrent", type=int, default=d.agents_concurrent, help="Agents API jobs")
    add("--agents-balance", type=float, default=d.agents_balance_usd, help="Agents API, USD")
    add("--agents-url-ttl", type=float, default=d.agents_url_ttl, help="output URLs, seconds")
    add("--agents-no-hdr", action="store_true", help="Agents API: refuse HDR (no access)")


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    spread = args.faults / len(_FAULT_KINDS)
    rates = {}
    for kind in _FAULT_KINDS:
        own = getattr(args, f"fault_{kind}")
        rates[f"fault_rate_{kind}"] = spread if own is None else own
    return SandboxConfig(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        time_scale=args.time_scale,
        queued_seconds=args.queued_seconds,
        dreaming_seconds=args.dreaming_seconds,
        image_seconds=args.image_seconds,
        limits=not args.no_limits,
        video_concurrent=args.video_concurrent,
        video_per_minute=args.video_per_minute,
        image_concurrent=args.image_concurrent,
        image_per_minute=args.image_per_minute,
        fault_seed=args.fault_seed,
        slow_seconds=args.slow_seconds,
        full_size=args.full_size,
        render=not args.no_render,
        db=args.db,
        credits_cents=args.credits,
        agents_per_minute=args.agents_per_minute,
        agents_concurrent=args.agents_concurrent,
        agents_balance_usd=args.agents_balance,
        agents_url_ttl=args.agents_url_ttl,
        agents_hdr_access=not args.agents_no_hdr,
        **rates,
    )


async def _serve(cfg: SandboxConfig) -> None:
    app = SandboxApp(cfg)
    server = Server(app.asgi, limits=LIMITS, name=SERVER_NAME)
    await server.start(cfg.host, cfg.port)
    base = server.base_url
    await app.started(base)
    print(f"luma: {base}{luma.PREFIX}")
    print(f"pixazo: {base}")
    print(f"luma_agents: {base}{agents.PREFIX}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
        await app.stopped()


def serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; exit 0."""
    raise_fd_limit()  # room for the connection cap (a soft limit of 1024 is common)
    try:
        asyncio.run(_serve(config_from_args(args)))
    except OSError as exc:
        print(f"dreamnodes sandbox: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreamnodes.sandbox")
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_arguments(commands.add_parser("serve", help="run the sandbox server"))
    return serve(parser.parse_args(argv))
