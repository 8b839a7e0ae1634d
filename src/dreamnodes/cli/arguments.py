"""The `run` command's flags, and how --params, --context and --set become a node's inputs."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamnodes.errors import DreamError

if TYPE_CHECKING:
    from dreamnodes.api.limits import Limits


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    add = run.add_argument
    add("node", help="the node id (see `dreamnodes nodes`)")
    add("--params", default="{}", metavar="JSON|@FILE", help="the node's inputs")
    add("--context", default=None, metavar="JSON|@FILE", help="values for {{ }} templates")
    add(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set one input (repeatable); a list, object, number or true/false field takes JSON",
    )
    add(
        "--step",
        action="append",
        default=[],
        metavar="NAME=JSON|@FILE",
        help="an earlier step's output, at {{steps.NAME}} (repeatable)",
    )
    add(
        "--wait",
        nargs="?",
        const="poll",
        default=None,
        choices=("none", "poll", "callback"),
        help="wait until a created generation ends: poll (the default for --wait) or callback;"
        " without the flag the node's own Wait For Completion field applies",
    )
    add(
        "--timeout",
        type=seconds,
        default=None,
        metavar="S",
        help="how long to wait, above 0 (default: the node's Wait Timeout, 900)",
    )
    add(
        "--download",
        default=None,
        metavar="DIR",
        help="save the assets to DIR/<id>.mp4|.jpg|.png (waits: polls unless --wait says how)",
    )
    add("--max-attempts", type=int, default=5, metavar="N", help="attempts per request, 1 to 5")
    add(
        "--public-url",
        default=None,
        metavar="URL",
        help="with --wait callback: the URL the provider reaches this run's callback receiver"
        " at (a reverse proxy or tunnel; also DREAMNODES_PUBLIC_URL)",
    )
    add(
        "--listen",
        default=None,
        metavar="HOST:PORT",
        help="with --wait callback: where the receiver listens (default 127.0.0.1, any port)",
    )
    add(
        "--provider",
        default=None,
        choices=("luma", "pixazo", "luma_agents"),
        help="the API to call (default: luma where the node offers it, else its only provider)",
    )
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
    add(
        "--store",
        default=None,
        metavar="PATH|URL",
        help="the run log: a file, or postgresql://... (default $DREAMNODES_STORE)",
    )
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
    add_limit_arguments(run)


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """--video-concurrent, --video-per-minute, ... (the account's limits)."""
    tier = parser.add_argument_group(
        "account limits (Luma's Build tier by default; raise for higher tiers)"
    )
    for family, running, per_minute in (("video", 10, 20), ("image", 40, 80), ("agents", 10, 30)):
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


def limits_of(args: argparse.Namespace) -> Limits:
    """The limits the flags give, scaled by --time-scale (checked: DreamError if invalid)."""
    from dreamnodes.api.limits import Limits

    return Limits(
        video_concurrent=args.video_concurrent,
        video_per_minute=args.video_per_minute,
        image_concurrent=args.image_concurrent,
        image_per_minute=args.image_per_minute,
        agents_concurrent=args.agents_concurrent,
        agents_per_minute=args.agents_per_minute,
    ).scaled(args.time_scale)


def seconds(text: str) -> float:
    """A --timeout: a finite number of seconds above 0 (refused before anything is sent)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a wait; give seconds above 0")
    return value


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
    kinds = _field_types(args.node)
    for pair in args.set:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DreamError("invalid_input", f"set: expected KEY=VALUE, got {pair!r}", field="set")
        params[key] = set_value(value, kinds.get(key))
    return params


def set_value(text: str, types: frozenset[str] | None) -> Any:
    """A --set value: JSON for a field that is not plain text (a list, an object, a number,
    true/false), or where text starts a JSON list or object; else the text as it is."""
    plain = types is None or "string" in types
    if plain and not text.lstrip().startswith(("[", "{")):
        return text
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text  # validation says what the field takes


def _field_types(node_id: str) -> dict[str, frozenset[str]]:
    from dreamnodes.catalog.package import load_package
    from dreamnodes.preparation.schema_view import compiled

    pkg = load_package()
    node = pkg.nodes.get(node_id)
    if node is None:
        return {}
    fields = compiled(node.input_schema, pkg.registry).root.properties or {}
    return {name: spec.types for name, spec in fields.items() if spec.types}


def run_context(args: argparse.Namespace) -> dict[str, Any]:
    """--context, with each --step NAME=JSON|@FILE put at steps.NAME."""
    context = read_json_arg(args.context, "context")
    context = {} if context is None else context
    if not isinstance(context, dict):
        raise DreamError("invalid_input", "context: expected a JSON object", field="context")
    for pair in args.step:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise DreamError(
                "invalid_input",
                f"step: expected NAME=JSON or NAME=@FILE, got {pair!r}",
                field="step",
            )
        steps = context.setdefault("steps", {})
        if not isinstance(steps, dict):
            raise DreamError("invalid_input", "context: steps is not an object", field="context")
        steps[name.strip()] = read_json_arg(value, f"step {name.strip()}")
    return context
