"""`dreamnodes worker`: a Celery worker for `serve --engine celery`, with the flags it needs.

A thin wrapper: it sets the variables `dreamnodes.engine.celery_app` reads and starts Celery's
own worker on our queue, so `celery -A dreamnodes.engine.celery_app worker -Q dreamnodes` with
the same variables is the same worker. Threads by default: every step is short and waits on the
network, never on the CPU.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["add_worker_arguments", "worker"]


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--broker", default=None, metavar="redis://...", help="default $DREAMNODES_BROKER")
    add(
        "--store",
        default=None,
        metavar="PATH|postgresql://...",
        help="the run log shared with serve (default $DREAMNODES_STORE)",
    )
    add(
        "--limits-url",
        default=None,
        metavar="redis://...",
        help="the Redis keeping the account's limits (default: the broker)",
    )
    add(
        "--base-url",
        action="append",
        default=[],
        metavar="URL",
        help="a base URL besides the providers' own this worker may send keys to (repeatable)",
    )
    add("--concurrency", type=int, default=8, metavar="N", help="steps at once (default 8)")
    add("--pool", choices=("threads", "prefork", "solo"), default="threads")
    add("--loglevel", default="WARNING", help="Celery's log level (default WARNING)")


def worker(args: argparse.Namespace) -> int:
    """Run the worker until SIGTERM (a warm stop: running steps finish) or SIGKILL."""
    if args.concurrency < 1:
        print("dreamnodes worker: --concurrency must be 1 or more", file=sys.stderr)
        return 2
    settings = {
        "DREAMNODES_BROKER": args.broker,
        "DREAMNODES_STORE": args.store,
        "DREAMNODES_LIMITS_URL": args.limits_url,
        "DREAMNODES_BASE_URLS": ",".join(args.base_url) or None,
    }
    for name, value in settings.items():
        if value:
            os.environ[name] = value
    if not os.environ.get("DREAMNODES_BROKER"):
        print(
            "dreamnodes worker: needs --broker redis://... (or DREAMNODES_BROKER)", file=sys.stderr
        )
        return 2
    try:
        from dreamnodes.engine.celery_app import QUEUE, app
    except ImportError:
        print("dreamnodes worker: needs the [engine] extra: pip install 'dreamnodes[engine]'",
              file=sys.stderr)  # fmt: skip
        return 2
    app.worker_main(
        [
            "worker",
            f"--loglevel={args.loglevel}",
            f"--concurrency={args.concurrency}",
            f"--pool={args.pool}",
            f"--queues={QUEUE}",
            f"--hostname=dreamnodes{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0
