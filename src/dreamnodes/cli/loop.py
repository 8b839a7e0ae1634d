"""`run --each`: a JSON Lines file run line by line, every line checked before anything is sent.

One output line per input line, each carrying its 1-based `line`: the node's output, its
`{"error": ...}`, or `{"line": N, "blank": true}` for a blank line (kept as a place, never
run; blank lines at the end of the file are dropped). `{{index}}` is the 0-based place
(`line` - 1). A dry run ends with `{"total": {...}}`: the items, the invalid ones and the sum
of the estimated prices.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from dreamnodes.errors import DreamError

BLANK: Any = object()  # a blank line's place


def read_lines(path: str) -> list[Any]:
    """Each line's JSON value, or BLANK; `-` reads standard input."""
    try:
        if path == "-":
            text, name = sys.stdin.read(), "standard input"
        else:
            with open(path, encoding="utf-8-sig") as file:
                text, name = file.read(), path
    except OSError as exc:
        raise DreamError(
            "invalid_input", f"cannot read items file {path}: {exc.strerror}", field="each"
        ) from None
    except UnicodeDecodeError as exc:
        raise DreamError(
            "invalid_input", f"items file {path} is not UTF-8: {exc.reason}", field="each"
        ) from None
    lines: list[Any] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            lines.append(BLANK)
            continue
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DreamError(
                "invalid_input",
                f"{name} line {number} is not JSON: {exc.msg} (column {exc.colno})",
                field="each",
            ) from None
    while lines and lines[-1] is BLANK:
        lines.pop()
    return lines


def write(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def item_context(context: dict[str, Any], item: Any, place: int) -> dict[str, Any]:
    return {**context, "item": item, "index": place}


def dry_run(args: argparse.Namespace, params: dict[str, Any], context: dict[str, Any]) -> int:
    """`--dry-run --each`: one estimate (or error) per line, then the total. Exit 2 if any
    line is invalid."""
    from dreamnodes.preparation.prepare import estimate

    lines = read_lines(args.each)
    items = invalid = priced = 0
    usd = 0.0
    for place, item in enumerate(lines):
        if item is BLANK:
            write({"line": place + 1, "blank": True})
            continue
        items += 1
        try:
            found = estimate(
                args.node,
                params,
                item_context(context, item, place),
                provider=args.provider,
                base_url=args.base_url,
            )
        except DreamError as error:
            invalid += 1
            write({"line": place + 1, "error": error.to_dict()})
            continue
        write({"line": place + 1, **found})
        if found.get("estimate_usd") is not None:
            priced += 1
            usd += float(found["estimate_usd"])
    total = {"lines": len(lines), "items": items, "invalid": invalid, "priced": priced}
    write({"total": {**total, "estimate_usd": round(usd, 4)}})
    return 2 if invalid else 0


def check_all(
    lines: list[Any],
    check: Callable[[Any, int], None],
) -> dict[int, DreamError]:
    """Every item's problem before anything is sent, by place."""
    problems: dict[int, DreamError] = {}
    for place, item in enumerate(lines):
        if item is BLANK:
            continue
        try:
            check(item, place)
        except DreamError as error:
            problems[place] = error
    return problems


def refuse(lines: list[Any], problems: dict[int, DreamError]) -> int:
    """Some lines are invalid: print every line (the others `not_run`), send nothing, exit 2."""
    bad = sorted(problems)
    named = ", ".join(str(p + 1) for p in bad[:10]) + (", ..." if len(bad) > 10 else "")
    for place, item in enumerate(lines):
        if item is BLANK:
            write({"line": place + 1, "blank": True})
        elif place in problems:
            write({"line": place + 1, "error": problems[place].to_dict()})
        else:
            error = DreamError("not_run", f"not run: nothing was sent, line {named} is invalid")
            write({"line": place + 1, "error": error.to_dict()})
    runnable = sum(1 for item in lines if item is not BLANK)
    sys.stderr.write(
        f"dreamnodes: {len(bad)} of {runnable} items invalid (line {named}); nothing was sent\n"
    )
    return 2


async def report(lines: list[Any], positions: list[int], results: AsyncIterator[Any]) -> int:
    """Print each result at its line (blank lines in their places); the loop's exit code."""
    failed: list[DreamError] = []
    failed_lines: list[int] = []
    not_run = 0
    shown = 0
    async for result in results:
        place = positions[result.index]
        while shown < place:
            write({"line": shown + 1, "blank": True})
            shown += 1
        shown = place + 1
        error = result.error
        if error is None:
            write({"line": place + 1, **result.output})
            continue
        if error.code == "not_run" and result.stopped_by is not None:
            not_run += 1
            stopper = positions[result.stopped_by] + 1
            error = DreamError("not_run", f"not run: stopped after line {stopper} failed")
        else:
            failed.append(error)
            failed_lines.append(place + 1)
        write({"line": place + 1, "error": error.to_dict()})
    if not failed:
        return 0
    which = ", ".join(map(str, failed_lines[:10])) + (", ..." if len(failed_lines) > 10 else "")
    skipped = f", {not_run} not run" if not_run else ""
    total = len(positions)
    sys.stderr.write(f"dreamnodes: {len(failed)} of {total} items failed (line {which}){skipped}\n")
    return 2 if all(e.exit_code == 2 for e in failed) else 1
