"""`dreamnodes webhook serve`: a callback receiver with one registration, updates as JSON Lines."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from typing import Any

from dreamnodes.callbacks.receiver import CallbackReceiver
from dreamnodes.errors import DreamError
from dreamnodes.serving import raise_fd_limit

__all__ = ["add_webhook_arguments", "serve_webhooks"]


def add_webhook_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `dreamnodes webhook serve`."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument(
        "--public-url",
        default=None,
        help="how the provider reaches this receiver (a tunnel or proxy), e.g. https://x.example",
    )
    parser.add_argument(
        "--max-body", type=int, default=1 << 20, help="largest callback body in bytes"
    )


def serve_webhooks(args: argparse.Namespace) -> int:
    """Print the callback URL, then each update that moves a generation forward, one JSON line
    each, until SIGINT or SIGTERM. Exit 0 then; 1 if the receiver cannot start."""
    raise_fd_limit()  # room for the receiver's connection cap (a soft limit of 1024 is common)
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:  # a Ctrl-C before the signal handlers were in place
        return 0
    except DreamError as error:
        print(f"dreamnodes webhook serve: {error}", file=sys.stderr)
        return error.exit_code


def _print_line(generation: dict[str, Any]) -> None:
    try:
        print(json.dumps(generation, sort_keys=True), flush=True)
    except BrokenPipeError:
        # The reader went away; updates are still answered, there is no one to show them to.
        with contextlib.suppress(Exception):
            sys.stdout.close()


async def _serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    receiver = CallbackReceiver(
        host=args.host, port=args.port, public_url=args.public_url, max_body=args.max_body
    )
    async with receiver:
        registration = receiver.register(on_update=_print_line)
        print(registration.url, flush=True)
        await stop.wait()
    return 0
