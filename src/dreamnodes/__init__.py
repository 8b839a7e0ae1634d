"""Declarative workflow nodes for the Luma Dream Machine API.

The host-facing API, loaded on first use (so `dreamnodes nodes` starts fast)::

    from dreamnodes import load_package, run_node, run_node_sync, Runner, estimate, DreamError
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dreamnodes.api.limits import Limits
    from dreamnodes.api.retry import RetryPolicy
    from dreamnodes.catalog.package import load_package
    from dreamnodes.errors import DreamError
    from dreamnodes.execution.live_options import live_options
    from dreamnodes.execution.runner import Runner
    from dreamnodes.preparation.prepare import estimate, prepare
    from dreamnodes.runlog.recorded import run_items, run_node, run_node_sync, run_recorded
    from dreamnodes.runlog.store import RunStore

_EXPORTS = {
    "DreamError": "dreamnodes.errors",
    "Limits": "dreamnodes.api.limits",
    "RetryPolicy": "dreamnodes.api.retry",
    "Runner": "dreamnodes.execution.runner",
    "estimate": "dreamnodes.preparation.prepare",
    "live_options": "dreamnodes.execution.live_options",
    "load_package": "dreamnodes.catalog.package",
    "prepare": "dreamnodes.preparation.prepare",
    "run_items": "dreamnodes.runlog.recorded",
    "run_node": "dreamnodes.runlog.recorded",
    "run_node_sync": "dreamnodes.runlog.recorded",
    "run_recorded": "dreamnodes.runlog.recorded",
    "RunStore": "dreamnodes.runlog.store",
}
__all__ = [
    "DreamError",
    "Limits",
    "RetryPolicy",
    "RunStore",
    "Runner",
    "estimate",
    "live_options",
    "load_package",
    "prepare",
    "run_items",
    "run_node",
    "run_node_sync",
    "run_recorded",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dreamnodes' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
