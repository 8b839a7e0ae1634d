"""`dreamnodes runs list|show|retry`: reading the run log and re-running a failed run."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from dreamnodes.cli.arguments import seconds
from dreamnodes.errors import DreamError
from dreamnodes.runlog.store import STATUSES, RunRecord, RunStore

_COLUMNS = ("ID", "NODE", "STATUS", "STARTED", "DURATION", "GENERATION", "ERROR")


def add_runs_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `runs` with its `list`, `show` and `retry` subcommands."""
    runs = subparsers.add_parser("runs", help="list, show and retry recorded runs")
    actions = runs.add_subparsers(dest="runs_command", required=True, metavar="{list,show,retry}")

    def with_store(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument(
            "--store",
            metavar="PATH|URL",
            default=None,
            help="the run log: a file, or postgresql://... (default: $DREAMNODES_STORE or the"
            " user data directory)",
        )
        return parser

    listing = with_store(actions.add_parser("list", help="recent runs, newest first"))
    listing.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    listing.add_argument("--limit", type=_positive, default=50, metavar="N")
    listing.add_argument("--status", choices=STATUSES, default=None)
    listing.add_argument("--node", default=None, metavar="NODE")

    show = with_store(actions.add_parser("show", help="one run's full record as JSON"))
    show.add_argument("id", metavar="ID")

    retry = with_store(actions.add_parser("retry", help="run a failed run again, same params"))
    retry.add_argument("id", metavar="ID")
    where = retry.add_mutually_exclusive_group()
    where.add_argument(
        "--base-url",
        default=None,
        metavar="URL",
        help="send to this URL (needed when the run was not sent to the provider's own API)",
    )
    where.add_argument(
        "--sandbox", action="store_true", help="retry against a new built-in sandbox"
    )
    retry.add_argument(
        "--timeout",
        type=seconds,
        default=None,
        metavar="S",
        help="wait this long, above 0 (default: as recorded)",
    )
    retry.add_argument(
        "--max-attempts",
        type=int,
        default=None,
        metavar="N",
        help="attempts per request, 1 to 5 (default: as recorded)",
    )


def runs_command(args: argparse.Namespace, rerun: Callable[[RunRecord], int]) -> int:
    """Carry out a parsed `runs` command; returns the exit code."""
    try:
        with RunStore(args.store) as store:
            if args.runs_command == "list":
                records = store.list(limit=args.limit, status=args.status, node=args.node)
                _print_list(records, as_json=args.json, path=store.path)
                return 0
            record = store.get(args.id)
        if args.runs_command == "show":
            print(json.dumps(record.to_dict(), indent=2, ensure_ascii=False))
            return 0
        if record.status == "succeeded" or (record.status == "running" and not record.abandoned):
            owner = (record.owner or "").split(":")
            why = (
                "succeeded"
                if record.status == "succeeded"
                else f"is still running (process {owner[1] if len(owner) > 1 else '?'}"
                f" on {owner[0] or '?'})"
            )
            raise DreamError(
                "invalid_input",
                f"run {record.id} {why}; only a failed, interrupted or abandoned run can be"
                " retried",
                field="id",
            )
    except DreamError as error:
        return _fail(error)
    return rerun(record)


def _fail(error: DreamError) -> int:
    print(json.dumps({"error": error.to_dict()}, ensure_ascii=False))
    print(f"dreamnodes: {error}", file=sys.stderr)
    return error.exit_code


def _print_list(records: list[RunRecord], *, as_json: bool, path: str) -> None:
    if as_json:
        print(json.dumps([_summary(r) for r in records], indent=2, ensure_ascii=False))
        return
    if not records:
        print(f"no runs recorded in {path}", file=sys.stderr)
        return
    rows = [_COLUMNS] + [_row(r) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _summary(record: RunRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "node": record.node,
        "provider": record.provider,
        "status": record.shown_status,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "seconds": record.seconds,
        "generation_id": record.generation_id,
        "error_code": (record.error or {}).get("code"),
    }


def _row(record: RunRecord) -> tuple[str, ...]:
    seconds = record.seconds
    return (
        record.id,
        record.node,
        record.shown_status,
        record.started_at.replace("T", " ").removesuffix("Z")[:19],
        "-" if seconds is None else f"{seconds:.1f}s",
        record.generation_id or "-",
        str((record.error or {}).get("code") or "-"),
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value
