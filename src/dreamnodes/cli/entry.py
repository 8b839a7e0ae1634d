"""The `dreamnodes` command line: list, describe and run nodes; the sandbox; the run log.

Output contract: a node's output as JSON on stdout and exit 0; on failure ``{"error": {...}}``
on stdout, one readable line on stderr, exit 2 for bad input or templates, 1 for the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import re
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from dreamnodes.cli.output import fail
from dreamnodes.errors import DreamError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a DreamError (JSON on stdout, exit 2), not a traceback:
    the usage line goes to stderr, a mistyped flag or command gets a "did you mean", and a
    flag is never taken from its first letters (`--param` is not `--params`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.set_defaults(_parser=self)  # the deepest parser used answers unknown flags

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(self.format_usage())
        raise DreamError("invalid_input", message + self._suggestion(message), field="arguments")

    def _suggestion(self, message: str) -> str:
        flags = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
        unknown = re.match(r"unrecognized arguments: (\S+)", message)
        if unknown:
            wrong, known = unknown.group(1).split("=")[0], flags
        else:
            choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
            if not choice:
                return ""
            wrong, known = choice.group(1), re.findall(r"'([^']*)'", choice.group(2))
        likely = difflib.get_close_matches(wrong, known, n=1, cutoff=0.6)
        return f"; did you mean {likely[0]}?" if likely else ""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; the sandbox's and webhook's own options are loaded only for their command."""
    parser = _Parser(prog="dreamnodes", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    nodes = commands.add_parser("nodes", help="list the nodes")
    nodes.add_argument("--json", action="store_true", help="the manifest's node list as JSON")

    describe = commands.add_parser("describe", help="show a node's form: fields, options, rules")
    describe.add_argument("node")
    describe.add_argument("--json", action="store_true", help="the node file and its input schema")

    options = commands.add_parser(
        "options", help="a field's options: live where declared, else static"
    )
    options.add_argument("node")
    options.add_argument("field")
    options.add_argument("--provider", default=None, choices=("luma", "pixazo", "luma_agents"))
    where = options.add_mutually_exclusive_group()
    where.add_argument("--base-url", default=None, metavar="URL")
    where.add_argument("--sandbox", action="store_true")

    run = commands.add_parser("run", help="run a node")
    from dreamnodes.cli.arguments import add_run_arguments

    add_run_arguments(run)

    sandbox = commands.add_parser("sandbox", help="the local Luma API sandbox")
    sandbox_commands = sandbox.add_subparsers(
        dest="sandbox_command", required=True, parser_class=_Parser
    )
    serve = sandbox_commands.add_parser("serve", help="serve the sandbox until interrupted")
    if command == "sandbox":
        try:
            from dreamnodes.sandbox.cli import add_serve_arguments
        except ImportError:  # the [sandbox] extra is not installed
            serve.set_defaults(sandbox_missing=True)
        else:
            add_serve_arguments(serve)

    from dreamnodes.cli.runs import add_runs_parser

    add_runs_parser(commands)  # type: ignore[arg-type]  # a subclass of ArgumentParser

    webhook = commands.add_parser("webhook", help="the callback receiver")
    webhook_commands = webhook.add_subparsers(
        dest="webhook_command", required=True, parser_class=_Parser
    )
    receive = webhook_commands.add_parser("serve", help="receive Luma and Pixazo callbacks")
    if command == "webhook":
        from dreamnodes.cli.webhook import add_webhook_arguments

        add_webhook_arguments(receive)
    from dreamnodes.cli.serve import add_serve_arguments as add_service_arguments

    add_service_arguments(commands.add_parser("serve", help="the nodes as an HTTP service"))
    from dreamnodes.cli.worker import add_worker_arguments

    add_worker_arguments(commands.add_parser("worker", help="a Celery worker for serve"))
    from dreamnodes.cli.store import add_store_arguments

    add_store_arguments(commands.add_parser("store", help="the run log's schema revision"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # SIGTERM stops like Ctrl-C: running runs are recorded `interrupted`, not left running.
    previous = None
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        parser = build_parser(argv[0] if argv else None)
        args, extra = parser.parse_known_args(argv)
        if extra:
            getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
        return _dispatch(args)
    except DreamError as error:
        return fail(error)
    except KeyboardInterrupt:
        sys.stderr.write("dreamnodes: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`dreamnodes runs list | head`): nothing more to say to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug: still the contract's JSON and one line, no traceback
        if os.environ.get("DREAMNODES_DEBUG"):
            raise
        from dreamnodes.redact import scrub_text

        message = f"internal error ({type(exc).__name__}: {exc}); DREAMNODES_DEBUG=1 shows where"
        keys = (os.environ.get(name, "") for name in ("LUMA_API_KEY", "PIXAZO_API_KEY"))
        return fail(DreamError("internal_error", scrub_text(message, keys, "***")))


def _dispatch(args: argparse.Namespace) -> int:
    import asyncio  # only the commands that run something need an event loop

    from dreamnodes.cli import commands, describe

    if args.command == "nodes":
        return describe.list_nodes(as_json=args.json)
    if args.command == "describe":
        return describe.describe(args.node, as_json=args.json)
    if args.command == "run":
        return asyncio.run(commands.run(args))
    if args.command == "options":
        return asyncio.run(commands.options(args))
    if args.command == "sandbox":
        if getattr(args, "sandbox_missing", False):
            raise DreamError(
                "invalid_input",
                "the sandbox needs the [sandbox] extra: pip install 'dreamnodes[sandbox]'",
                field="sandbox",
            )
        from dreamnodes.sandbox.cli import serve

        return serve(args)
    if args.command == "runs":
        from dreamnodes.cli.runs import runs_command

        return runs_command(args, lambda record: commands.rerun(record, args))
    if args.command == "webhook":
        from dreamnodes.cli.webhook import serve_webhooks

        return serve_webhooks(args)
    if args.command == "store":
        from dreamnodes.cli.store import store_command

        return store_command(args)
    if args.command == "worker":
        from dreamnodes.cli.worker import worker

        return worker(args)
    if args.command == "serve":
        from dreamnodes.cli.serve import serve as serve_service

        return serve_service(args)
    raise DreamError("invalid_input", f"unknown command {args.command!r}", field="command")


if __name__ == "__main__":
    sys.exit(main())
