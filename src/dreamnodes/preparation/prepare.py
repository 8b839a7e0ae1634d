"""Preparing a node call, with no I/O: templates, labels, validation, rules, mapping.

Everything here raises before anything is sent; `dreamnodes.execution.runner` does the sending.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dreamnodes.catalog.package import Node, Package, Provider, load_package
from dreamnodes.catalog.pricing import estimate_usd
from dreamnodes.catalog.requests import ApiRequest
from dreamnodes.errors import DreamError
from dreamnodes.preparation import inputs, templates, usable, validation

if TYPE_CHECKING:
    from dreamnodes.callbacks.receiver import Registration

WAIT_MODES: tuple[str, ...] = ("none", "poll", "callback")
DEFAULT_TIMEOUT = 900.0


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
    node = pkg.node(node_id)
    if not isinstance(params, Mapping):
        raise DreamError("invalid_input", "params: expected a JSON object", field="params")
    # Text that is not Unicode or absurd nesting would break a later stage (the request, the
    # run log, the JSON printed): refused here, by name, before anything else looks at it.
    usable.check_usable(params, "params")
    if context:
        usable.check_usable(context, "context")
    rendered = templates.render(dict(params), context or {})
    values = inputs.normalise(rendered, node.input_schema, pkg.registry)
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
            out["estimate_note"] = price["note"]
    return out


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
    return replace(
        prepared,
        wait=prepared.wait if wait is None else wait,
        timeout=prepared.timeout if timeout is None else timeout,
    )
