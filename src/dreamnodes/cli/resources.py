"""What a command sets up before it runs: a sandbox, the key, the run log, the retry policy."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from dreamnodes.catalog.package import load_package
from dreamnodes.errors import DreamError
from dreamnodes.preparation.prepare import find_node


@contextlib.contextmanager
def sandbox_for(
    enabled: bool, provider: str, time_scale: float = 1.0
) -> Iterator[tuple[str | None, str | None]]:
    """A sandbox on a free loopback port for the run, with its base URL and a key for it
    (its durations and limits on a clock `time_scale` times faster)."""
    if not enabled:
        yield None, None
        return
    try:
        from dreamnodes.sandbox import Sandbox, SandboxConfig
    except ImportError:
        raise DreamError(
            "invalid_input",
            "--sandbox needs the [sandbox] extra: pip install 'dreamnodes[sandbox]'",
            field="sandbox",
        ) from None
    with Sandbox(SandboxConfig(port=0, time_scale=time_scale)) as sb:
        urls = {"pixazo": sb.pixazo_url, "luma_agents": sb.luma_agents_url}
        yield urls.get(provider, sb.luma_url), "sandbox-key"


def key_env(provider: str) -> str:
    env: str = load_package().credential(provider)["env"]
    return env


def open_store(path: str | None) -> Any:
    from dreamnodes.runlog.store import RunStore

    names = ("LUMA_API_KEY", "PIXAZO_API_KEY", "LUMA_AGENTS_API_KEY")
    secrets = [v for v in (os.environ.get(name) for name in names) if v]
    return RunStore(path, secrets=secrets)


def policy_for(max_attempts: int, time_scale: float) -> Any:
    from dreamnodes.api.retry import RetryPolicy

    # A rehearsal's clock runs time_scale times faster: so do the waits between retries.
    return RetryPolicy.on_clock(max_attempts, time_scale)


def allow_private_urls(flag: bool | None) -> bool:
    """The flag when given, else DREAMNODES_ALLOW_PRIVATE_URLS=1."""
    if flag is not None:
        return flag
    return os.environ.get("DREAMNODES_ALLOW_PRIVATE_URLS", "").strip().lower() in ("1", "true")


def default_provider(node_id: str, chosen: str | None) -> str:
    """The provider named, else Luma's Dream Machine where the node offers it, else its own.

    An Agents-only node (Ray 3.2, UNI-1, Files) so runs without `--provider luma_agents`.
    """
    if chosen is not None:
        return chosen
    providers = list(find_node(load_package(), node_id).providers)
    return "luma" if not providers or "luma" in providers else providers[0]
