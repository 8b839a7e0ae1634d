"""Preparing a node call, with no I/O: templates, labels, validation, rules, mapping.

Everything here raises before anything is sent; `dreamnodes.execution.runner` does the sending.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dreamnodes.catalog.package import Node, Package, Provider, load_package
from dreamnodes.catalog.pricing import estimate_usd
from dreamnodes.catalog.requests import ApiRequest
from dreamnodes.errors import DreamError
from dreamnodes.preparation import inputs, templates, usable, validation
from dreamnodes.preparation.videos import resolve_video

if TYPE_CHECKING:
    from dreamnodes.callbacks.receiver import Registration

WAIT_MODES: tuple[str, ...] = ("none", "poll", "callback")
DEFAULT_TIMEOUT = 900.0
MAX_TIMEOUT = 86400.0


def find_node(pkg: Package, node_id: str) -> Node:
    """The node, or an error suggesting the likely one ("did you mean dream_machine?")."""
    if node_id in pkg.nodes:
        return pkg.node(node_id)
    likely = difflib.get_close_matches(str(node_id), list(pkg.nodes), n=1, cutoff=0.5)
    hint = f"did you mean {likely[0]}? " if likely else ""
    raise DreamError(
        "invalid_input",
        f"node: unknown node {node_id!r}; {hint}nodes: {', '.join(pkg.nodes)}",
        field="node",
    )


def check_timeout(timeout: float) -> float:
    """A wait timeout in seconds: a finite number above 0, at most a day."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise DreamError("invalid_input", "timeout: expected a number of seconds", field="timeout")
    if not math.isfinite(timeout) or timeout <= 0 or timeout > MAX_TIMEOUT:
        raise DreamError(
            "invalid_input",
            f"timeout: {timeout:g} is not a wait; give seconds above 0, at most {MAX_TIMEOUT:g}",
            field="timeout",
        )
    return float(timeout)


@dataclass(frozen=True)
class Prepared:
    """A node call checked and mapped, ready to send."""

    node: Node
    provider: Provider
    params: dict[str, Any]
    request: ApiRequest | None
    callback: Registration | None = None  # when waiting for callbacks
    wait: str = "none"  # a create node's own Wait and Timeout fields (run options, not sent)
    timeout: float = DEFAULT_TIMEOUT


def prepare(
    node_id: str,
    params: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
    *,
    provider: str = "luma",
    package: Package | None = None,
) -> Prepared:
    """Resolve templates, normalise labels, validate, check rules and map: raises DreamError."""
    pkg = package or load_package()
    node = find_node(pkg, node_id)
    if not isinstance(params, Mapping):
        raise DreamError("invalid_input", "params: expected a JSON object", field="params")
    # Text that is not Unicode or absurd nesting would break a later stage (the request, the
    # run log, the JSON printed): refused here, by name, before anything else looks at it.
    usable.check_usable(params, "params")
    if context:
        usable.check_usable(context, "context")
    rendered = templates.render(dict(params), context or {})
    rendered = resolve_video(rendered, node.input_schema.get("properties", {}))
    values = inputs.normalise(rendered, node.input_schema, pkg.registry)
    # A field the form requires and gives a default is filled like a form pre-fills it.
    values = inputs.with_defaults(values, node.input_schema, pkg.registry, required_only=True)
    try:
        node.fast_validator(values)
    except Exception:  # the fast path only says no; jsonschema says why
        validation.validate(values, node.input_schema, pkg.registry)
    validation.check_rules(values, node.rules)
    if node.kind in ("local", "trigger"):
        return Prepared(node, Provider(provider, {}, None), values, None)
    run_wait, run_timeout = "none", DEFAULT_TIMEOUT
    if node.kind == "create":
        run_wait = str(values.pop("wait", run_wait))
        run_timeout = float(values.pop("timeout", run_timeout))
    chosen = node.provider(provider)
    validation.check_rules(values, chosen.spec.get("rules", ()))
    for name in values:
        if name not in chosen.accepts:
            raise DreamError(
                "invalid_input",
                f"{name}: not supported by the {provider} provider of {node.id}",
                field=name,
            )
    assert chosen.plan is not None
    return Prepared(
        node, chosen, values, chosen.plan.build(values), wait=run_wait, timeout=run_timeout
    )


def describe_request(prepared: Prepared, base_url: str) -> dict[str, Any]:
    """The request as it would go out, without credentials (for --dry-run and the run log)."""
    req = prepared.request
    if req is None:
        return {}
    out: dict[str, Any] = {"method": req.method, "url": base_url.rstrip("/") + req.path}
    if req.query:
        out["query"] = dict(req.query)
    if req.json is not None:
        out["body"] = req.json
    if req.headers:
        out["headers"] = dict(req.headers)
    return out


def estimate(
    node_id: str,
    params: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
    *,
    provider: str = "luma",
    base_url: str | None = None,
    package: Package | None = None,
) -> dict[str, Any]:
    """What a run would send and cost, sending nothing (the Python side of --dry-run)."""
    pkg = package or load_package()
    prepared = prepare(node_id, params, context, provider=provider, package=pkg)
    base_url = base_url or pkg.manifest["providers"][provider]["base_url"]
    out: dict[str, Any] = {
        "node": node_id,
        "provider": provider,
        "request": describe_request(prepared, base_url),
        "estimate_usd": None,
    }
    price = prepared.provider.spec.get("price")
    if price:
        full = inputs.with_defaults(prepared.params, prepared.node.input_schema, pkg.registry)
        out["estimate_usd"] = estimate_usd(price, full)
        if "note" in price:
            out["estimate_note"] = price_note(price, full)
    return out


def price_note(price: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """The price's note, said of this estimate: "for model ray-2, resolution 4k, duration 9s:
    ..." (the values it was priced by, defaults filled in)."""
    names = [price["by"]] if "by" in price else []
    names += [name for name in price.get("factors", {}) if name not in names]
    if price.get("per_second_of") and price["per_second_of"] not in names:
        names.append(price["per_second_of"])
    used = [f"{name} {_shown(params[name])}" for name in names if name in params]
    return f"for {', '.join(used)}: {price['note']}" if used else str(price["note"])


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def with_options(
    prepared: Prepared, *, wait: str | None = None, timeout: float | None = None
) -> Prepared:
    """The call with its run options (wait mode, timeout) overriding the node's own fields."""
    if wait is not None and wait not in WAIT_MODES:
        raise DreamError(
            "invalid_input",
            f"wait: {wait!r} is not one of {', '.join(WAIT_MODES)}",
            field="wait",
        )
    if timeout is not None:
        timeout = check_timeout(timeout)
    return replace(
        prepared,
        wait=prepared.wait if wait is None else wait,
        timeout=prepared.timeout if timeout is None else timeout,
    )
