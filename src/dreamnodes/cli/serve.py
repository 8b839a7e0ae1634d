"""`dreamnodes serve`: the nodes as an HTTP service (see `dreamnodes.service`).

Prints `serve: http://HOST:PORT` once it answers (with --sandbox, the sandbox's labelled
lines first; a generated token or signing secret once, labelled), then serves until SIGINT or
SIGTERM; running runs are then recorded `interrupted`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import sys

from dreamnodes.cli.arguments import add_limit_arguments

__all__ = ["add_serve_arguments", "serve"]

TOKEN_ENV = "DREAMNODES_SERVE_TOKEN"
SECRET_ENV = "DREAMNODES_SERVE_SIGNING_SECRET"
_LUMA_PREFIX = "/dream-machine/v1"  # where the sandbox serves Luma's API under its root


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    add("--port", type=int, default=8080, help="port to listen on (0: any free; default 8080)")
    add("--sandbox", action="store_true", help="send every run to a built-in sandbox")
    add(
        "--store",
        default=None,
        metavar="PATH|URL",
        help="the run log: a file, or postgresql://... (default: $DREAMNODES_STORE)",
    )
    add("--public-url", default=None, metavar="URL", help="how providers reach this server")
    add(
        "--allow-private-urls",
        action="store_true",
        default=None,
        help="let notify_url and downloads reach private addresses",
    )
    add(
        "--limits-url",
        default=None,
        metavar="redis://...",
        help="share the account limits in Redis with every other process on the key"
        " (needs dreamnodes[engine]; default: this process only)",
    )
    add(
        "--base-url",
        default=None,
        metavar="URL",
        help="send Luma's Dream Machine calls here instead of Luma's own API",
    )
    add(
        "--engine",
        choices=("embedded", "celery"),
        default="embedded",
        help="where runs are done: in this process (default), or on Celery workers"
        " (`dreamnodes worker`; needs dreamnodes[engine] and --broker)",
    )
    add(
        "--broker",
        default=None,
        metavar="redis://...",
        help="the Celery broker of --engine celery (default $DREAMNODES_BROKER); it also"
        " keeps the limits unless --limits-url says otherwise",
    )
    add(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="rehearsals: divide the limits' minute and the poll intervals by X",
    )
    add_limit_arguments(parser)
    add("--max-batch", type=int, default=1000, metavar="N", help="items in one batch")
    add("--max-body", type=int, default=1 << 20, metavar="BYTES", help="request body cap")


def serve(args: argparse.Namespace) -> int:
    """Serve until stopped; exit 0 then, 1 if it cannot listen."""
    from dreamnodes.cli.arguments import limits_of
    from dreamnodes.cli.resources import allow_private_urls, sandbox_for
    from dreamnodes.service import Endpoint, ServiceConfig
    from dreamnodes.serving import raise_fd_limit

    raise_fd_limit()
    token, secret = os.environ.get(TOKEN_ENV, ""), os.environ.get(SECRET_ENV, "")
    config = ServiceConfig(
        token=token or secrets.token_urlsafe(32),
        signing_secret=secret or secrets.token_urlsafe(32),
        store=args.store,
        public_url=args.public_url,
        allow_private_urls=allow_private_urls(args.allow_private_urls),
        max_batch=args.max_batch,
        max_body=args.max_body,
    )
    config.limits = limits_of(args)
    config.time_scale = args.time_scale
    if args.base_url:
        config.endpoints["luma"] = Endpoint(args.base_url.rstrip("/"))
    if args.engine == "celery":
        broker = args.broker or os.environ.get("DREAMNODES_BROKER")
        if not broker:
            print("dreamnodes serve: --engine celery needs --broker redis://...", file=sys.stderr)
            return 2
        from dreamnodes.engine.dispatch import CeleryEngine

        config.engine = CeleryEngine(broker, limits_url=args.limits_url)
    elif args.limits_url:
        from dreamnodes.engine.redis_limits import RedisLimiters

        config.limiter = RedisLimiters(args.limits_url)
    # The sandbox runs on the same clock as the limits and polls (--time-scale).
    with sandbox_for(args.sandbox, "luma", args.time_scale) as (luma_url, key):
        if luma_url is not None:
            # One sandbox serves every provider: Pixazo's gateway is its root.
            root = luma_url.removesuffix(_LUMA_PREFIX)
            config.endpoints = {
                "luma": Endpoint(luma_url, key, sandbox=True),
                "pixazo": Endpoint(root, key, sandbox=True),
            }
            config.sandbox_id = root
            print(f"luma: {luma_url}")
            print(f"pixazo: {root}", flush=True)
        shown = {
            "token": "" if token else config.token,
            "signing_secret": "" if secret else config.signing_secret,
        }
        try:
            asyncio.run(_serve(config, args.host, args.port, shown))
        except OSError as exc:
            print(f"dreamnodes serve: cannot listen: {exc.strerror or exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            pass
    return 0


async def _serve(config: object, host: str, port: int, shown: dict[str, str]) -> None:
    from dreamnodes.service import Service, ServiceConfig

    assert isinstance(config, ServiceConfig)
    service = Service(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        url = await service.start(host, port)
        print(f"serve: {url}")
        for label, value in shown.items():
            if value:  # generated here: shown once, never again
                print(f"{label}: {value}")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await service.stop()
