"""The `run` command's flags, and how --params, --context and --set become a node's inputs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dreamnodes.errors import DreamError


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
    add("--provider", default="luma", choices=("luma", "pixazo", "luma_agents"))
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
