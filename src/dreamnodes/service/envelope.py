"""A run's or batch's request body read into a checked spec; every problem named at once.

The body's own fields (`params`, `context`, `wait`, `timeout`, `provider`, `notify_url`,
`items`) are checked here together, so one 422 names every field at fault; the params are then
checked by the runtime exactly as on the command line (the same error, naming the field).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import httpx

from dreamnodes.errors import DreamError

__all__ = ["InputProblems", "RunSpec", "batch_items", "read_json", "run_spec", "url_problem"]

_RUN_FIELDS = frozenset({"params", "context", "wait", "timeout", "provider", "notify_url"})
_WAITS = ("none", "poll", "callback")


class InputProblems(Exception):
    """Every field at fault in a request body: (field, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))
        self.problems = problems

    def to_dict(self) -> dict[str, Any]:
        """The command line's error JSON, plus `fields`: every field named."""
        fields = [f for f, _ in self.problems]
        error = DreamError("invalid_input", str(self), field=fields[0] if fields else None)
        return {**error.to_dict(), "fields": fields}


@dataclass(frozen=True)
class RunSpec:
    """One run as asked for."""

    node: str
    params: dict[str, Any]
    context: dict[str, Any] = field(default_factory=dict)
    wait: str | None = None
    timeout: float | None = None
    provider: str = "luma"
    notify_url: str | None = None

    def fingerprint(self, extra: Any = None) -> str:
        """What an idempotency key is bound to: the same key must mean the same request."""
        return json.dumps(
            [
                self.node,
                self.params,
                self.context,
                self.wait,
                self.timeout,
                self.provider,
                self.notify_url,
                extra,
            ],
            sort_keys=True,
            default=str,
        )


def read_json(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InputProblems([("body", f"not valid JSON ({exc})")]) from None


def url_problem(url: Any) -> str | None:
    """Why `url` is not an http(s) URL, or None."""
    if not isinstance(url, str):
        return "expected a URL string"
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return "not a valid URL"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "expected an http:// or https:// URL"
    return None


def run_spec(
    node: str,
    body: Any,
    *,
    providers: list[str],
    extra_fields: frozenset[str] = frozenset(),
    problems: list[tuple[str, str]] | None = None,
) -> RunSpec:
    """The run a body asks for; InputProblems naming every bad field of the body."""
    found: list[tuple[str, str]] = problems if problems is not None else []
    if not isinstance(body, dict):
        raise InputProblems([("body", "expected a JSON object")])
    for name in sorted(set(body) - _RUN_FIELDS - extra_fields):
        found.append((name, "unknown field; expected " + ", ".join(sorted(_RUN_FIELDS))))
    params = body.get("params", {})
    if not isinstance(params, dict):
        found.append(("params", "expected a JSON object"))
    context = body.get("context")
    if context is not None and not isinstance(context, dict):
        found.append(("context", "expected a JSON object"))
    wait = body.get("wait")
    if wait is not None and wait not in _WAITS:
        found.append(("wait", f"{wait!r} is not allowed; choose one of none, poll, callback"))
    timeout = body.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        found.append(("timeout", "expected a number of seconds above 0"))
    provider = body.get("provider", providers[0] if providers else "luma")
    if provider not in providers:
        found.append(
            (
                "provider",
                f"{provider!r} does not run this node; choose one of " + ", ".join(providers),
            )
        )
    notify_url = body.get("notify_url")
    if notify_url is not None:
        why = url_problem(notify_url)
        if why is not None:
            found.append(("notify_url", why))
    if found:
        raise InputProblems(found)
    return RunSpec(
        node=node,
        params=dict(params),
        context=dict(context or {}),
        wait=wait,
        timeout=None if timeout is None else float(timeout),
        provider=str(provider),
        notify_url=notify_url,
    )


def batch_items(
    node: str, body: Any, *, providers: list[str], max_items: int
) -> tuple[RunSpec, list[Any]]:
    """A batch body: the run spec shared by every item, and the items (at most `max_items`)."""
    problems: list[tuple[str, str]] = []
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        problems.append(("items", "expected a non-empty JSON array"))
    elif len(items) > max_items:
        problems.append(("items", f"{len(items)} items; a batch takes at most {max_items}"))
    try:
        spec = run_spec(
            node, body, providers=providers, extra_fields=frozenset({"items"}), problems=problems
        )
    except InputProblems as error:
        raise InputProblems(sorted(error.problems)) from None
    if problems:
        raise InputProblems(sorted(problems))
    assert isinstance(items, list)
    return spec, items
