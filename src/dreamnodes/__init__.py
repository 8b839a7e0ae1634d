"""Declarative workflow nodes for the Luma Dream Machine API.

The host-facing API, loaded on first use (so `dreamnodes nodes` starts fast)::

    from dreamnodes import load_package, run_node, run_node_sync, Runner, estimate, DreamError
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dreamnodes.errors import DreamError
    from dreamnodes.journal import run_items, run_node, run_node_sync, run_recorded
    from dreamnodes.limits import Limits
    from dreamnodes.options import live_options
    from dreamnodes.package import load_package
    from dreamnodes.prepare import estimate, prepare
    from dreamnodes.retry import RetryPolicy
    from dreamnodes.run import Runner
    from dreamnodes.store import RunStore

_EXPORTS = {
    "DreamError": "dreamnodes.errors",
    "Limits": "dreamnodes.limits",
    "RetryPolicy": "dreamnodes.retry",
    "Runner": "dreamnodes.run",
    "estimate": "dreamnodes.prepare",
    "live_options": "dreamnodes.options",
    "load_package": "dreamnodes.package",
    "prepare": "dreamnodes.prepare",
    "run_items": "dreamnodes.journal",
    "run_node": "dreamnodes.journal",
    "run_node_sync": "dreamnodes.journal",
    "run_recorded": "dreamnodes.journal",
    "RunStore": "dreamnodes.store",
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
