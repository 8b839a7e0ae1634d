"""A worker process's runners: one per provider, base URL and run options, kept from step to
step (their HTTP clients and compiled validators are reused), and never one that would send
a key where it should not go: the provider's own URL, a `--base-url` the worker was started
with, or a built-in sandbox (which has a throwaway key of its own).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dreamnodes.api.limits import family_of_request
from dreamnodes.api.retry import RetryPolicy
from dreamnodes.api.wire import tls
from dreamnodes.catalog.package import load_package
from dreamnodes.catalog.requests import ApiRequest
from dreamnodes.engine.redis_limits import RedisLimiter
from dreamnodes.errors import DreamError
from dreamnodes.execution.runner import Runner

__all__ = ["SANDBOX_KEY", "Runners", "base_urls_from_env", "warm"]

SANDBOX_KEY = "sandbox-key"  # a built-in sandbox's throwaway key (no account behind it)


class Runners:
    """The runners of one worker process, trusted with keys for `base_urls` besides each
    provider's own URL."""

    def __init__(self, base_urls: tuple[str, ...] = ()) -> None:
        self.base_urls = tuple(u.rstrip("/") for u in base_urls)
        self._made: dict[tuple[Any, ...], _WorkerRunner] = {}

    def of(
        self,
        provider: str,
        base_url: str | None,
        options: Mapping[str, Any],
        limits: RedisLimiter | None = None,
    ) -> Runner:
        """The runner of a run: its provider, base URL and options (`sandbox`, `time_scale`,
        `max_attempts`, `allow_private_urls`); its 429s go to `limits`, for everyone."""
        runner = self._runner(provider, (base_url or "").rstrip("/"), options)
        if limits is not None:
            runner.shared = limits
        return runner

    async def aclose(self) -> None:
        for runner in self._made.values():
            await runner.aclose()
        self._made.clear()

    def _runner(self, provider: str, base_url: str, options: Mapping[str, Any]) -> _WorkerRunner:
        sandbox = bool(options.get("sandbox"))
        scale = float(options.get("time_scale") or 1.0)
        attempts = int(options.get("max_attempts") or 5)
        private = bool(options.get("allow_private_urls"))
        key = (provider, base_url, sandbox, scale, attempts, private)
        runner = self._made.get(key)
        if runner is None:
            runner = _WorkerRunner(
                api_key=SANDBOX_KEY if sandbox else None,
                provider=provider,
                base_url=base_url or None,
                retry=RetryPolicy.on_clock(attempts, scale),
                poll_scale=scale,
                allow_private_urls=private,
            )
            own = runner.package.manifest["providers"][provider]["base_url"].rstrip("/")
            if not sandbox and runner.base_url.rstrip("/") not in (own, *self.base_urls):
                raise DreamError(
                    "invalid_input",
                    f"base_url: this worker sends {provider}'s key only to {own}"
                    f"{''.join(', ' + u for u in self.base_urls)}; start it with --base-url"
                    f" {runner.base_url} to allow that one",
                    field="base_url",
                )
            self._made[key] = runner
        return runner


class _WorkerRunner(Runner):
    """A runner whose creates `serve` already took slots for (it takes none itself), and
    whose 429s are learned in the shared limits (`shared`), for everyone."""

    shared: RedisLimiter | None = None

    def _rate_limited(self, request: ApiRequest, retry_after: float | None) -> None:
        if self.shared is not None and request.billable:
            self.shared.rate_limited(family_of_request(request), retry_after)


def warm() -> None:
    """Before a worker's first step: compile every node's validator and load the process's TLS
    context (half a second that would otherwise delay its first creates)."""
    for node in load_package().nodes.values():
        _ = node.fast_validator
    tls()


def base_urls_from_env() -> tuple[str, ...]:
    """The URLs a worker may send keys to besides the providers' own (`--base-url`)."""
    text = os.environ.get("DREAMNODES_BASE_URLS", "")
    return tuple(u.strip() for u in text.split(",") if u.strip())
