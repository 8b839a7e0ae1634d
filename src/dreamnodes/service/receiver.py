"""The providers' callback receiver, mounted in the service's own app (one port, one server).

`CallbackReceiver` runs its own server; here its `route()` is served by the service's app and
its URLs are the service's: `--public-url` when given (how the provider reaches us), else the
address the service is bound to (enough for a sandbox on this machine).
"""

from __future__ import annotations

from dreamnodes.callbacks.receiver import CallbackReceiver

__all__ = ["MountedReceiver"]


class MountedReceiver(CallbackReceiver):
    """A receiver whose route lives in another app; `bind` tells it where that app listens."""

    def __init__(self, *, public_url: str | None = None, max_body: int = 1 << 20) -> None:
        super().__init__(public_url=public_url, max_body=max_body)
        self._bound: str | None = None

    def bind(self, base_url: str) -> None:
        self._bound = base_url.rstrip("/")

    @property
    def base_url(self) -> str:
        return self.public_url or self._bound or "http://127.0.0.1"

    async def start(self) -> None:
        """Nothing to start: the service's server serves the route."""

    async def stop(self) -> None:
        self.close_registrations()
