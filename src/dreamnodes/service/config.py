"""What a service is started with: its token and signing secret, where it sends, its caps."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dreamnodes.api.limiter import LimiterFactory
from dreamnodes.api.limits import Limits

if TYPE_CHECKING:
    from dreamnodes.engine.dispatch import CeleryEngine

__all__ = ["NOT_SERVED", "Endpoint", "ServiceConfig", "new_secret"]

# Nodes a caller of the service may not run, and why (they are left out of the contract).
NOT_SERVED: dict[str, str] = {
    "download_asset": "it writes files on the server's disk; fetch assets.video from the run",
}


def new_secret() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Endpoint:
    """Where one provider's calls go and with which key (the key never leaves the server)."""

    base_url: str | None = None  # None: the provider's own API
    api_key: str | None = None  # None: the provider's variable in the environment
    sandbox: bool = False


@dataclass
class ServiceConfig:
    """Everything `Service` needs; the command line fills it from its flags and environment."""

    token: str = field(default_factory=new_secret)
    signing_secret: str = field(default_factory=new_secret)
    store: str | None = None  # the run log (default: $DREAMNODES_STORE or the user data dir)
    public_url: str | None = None  # how providers reach the callback receiver mounted here
    allow_private_urls: bool = False  # notify_url and downloads may reach private addresses
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    sandbox_id: str | None = None  # which sandbox the endpoints point at (retries continue)
    limits: Limits | None = field(default_factory=Limits)
    limiter: LimiterFactory | None = None  # None: in-process; else shared (--limits-url)
    engine: CeleryEngine | None = None  # None: runs here; else on Celery workers (--engine)
    time_scale: float = 1.0  # a rehearsal against a sped-up sandbox: polls and retries too
    max_body: int = 1 << 20  # bytes of a request body
    max_batch: int = 1000  # items in one batch
    max_prefer_wait: float = 600.0  # seconds a `Prefer: wait=N` may hold an answer
    notify_attempts: int = 5
    notify_first_delay: float = 2.0  # seconds, then x4 each time (2, 8, 32, 128)
    batch_concurrency: int = 16

    def __repr__(self) -> str:
        # The token and the signing secret are secrets.
        return f"ServiceConfig(store={self.store!r}, public_url={self.public_url!r})"

    @property
    def secrets(self) -> list[str]:
        """What must never appear in an answer: provider keys (and our own secrets)."""
        keys = [e.api_key for e in self.endpoints.values() if e.api_key]
        return [*keys, self.token, self.signing_secret]
