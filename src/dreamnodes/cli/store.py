"""`dreamnodes store upgrade|current`: the run log's schema revision, in SQLite or PostgreSQL.

`upgrade` brings the store to this dreamnodes's head revision (as opening it for a run would)
and `current` reads its revision without changing anything; both print
``{"store": ..., "revision": ..., "head": ...}`` (the store's URL without its password).
"""

from __future__ import annotations

import argparse

from dreamnodes.cli.output import emit, fail
from dreamnodes.errors import DreamError


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `upgrade` and `current` (each with `--store`) to the `store` command's parser."""
    actions = parser.add_subparsers(
        dest="store_command", required=True, metavar="{upgrade,current}"
    )
    for name, summary in (
        ("upgrade", "bring the run log's schema to this dreamnodes's revision"),
        ("current", "the run log's schema revision, changing nothing"),
    ):
        action = actions.add_parser(name, help=summary)
        action.add_argument(
            "--store",
            metavar="PATH_OR_URL",
            default=None,
            help="the run log: a file, or postgresql://USER:PASSWORD@HOST/DATABASE"
            " (default: $DREAMNODES_STORE or the user data directory)",
        )


def store_command(args: argparse.Namespace) -> int:
    """Carry out a parsed `store` command; returns the exit code."""
    from dreamnodes.runlog.schema import HEAD, current_revision
    from dreamnodes.runlog.store import RunStore

    try:
        if args.store_command == "upgrade":
            with RunStore(args.store) as store:
                shown, revision = store.path, store.revision
        else:
            shown, revision = current_revision(args.store)
    except DreamError as error:
        return fail(error)
    emit({"store": shown, "revision": revision, "head": HEAD})
    return 0
