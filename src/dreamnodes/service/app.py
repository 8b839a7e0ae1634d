"""The service: one Starlette app (API, page, callback receiver) and what it runs with.

`Service(config)` opens the run log, builds the app and, on first use, one `Runner` per
provider (the keys stay here). `start`/`stop` serve it on the running event loop;
`serve_in_thread` serves it on a thread (tests, benchmarks). Stopping cancels every run and
batch in progress: each is recorded `interrupted`, and `POST /v1/runs/{id}/retry` continues it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from dreamnodes.api.retry import RetryPolicy
from dreamnodes.downloads.addresses import AddressGuard
from dreamnodes.execution.runner import Runner
from dreamnodes.service.auth import Auth
from dreamnodes.service.batches import Batches
from dreamnodes.service.config import Endpoint, ServiceConfig
from dreamnodes.service.ledger import ServiceStore
from dreamnodes.service.notify import Notifier
from dreamnodes.service.receiver import MountedReceiver
from dreamnodes.service.routes import build_app
from dreamnodes.service.runs import Runs, run_view
from dreamnodes.serving import ConnectionLimits, Server, ThreadedServer

__all__ = ["Service", "serve_in_thread"]

_KEY_VARS = ("LUMA_API_KEY", "PIXAZO_API_KEY")


class Service:
    """`dreamnodes serve`'s state: the run log, the runners, runs, batches, notifications."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        env_keys = [v for v in (os.environ.get(n) for n in _KEY_VARS) if v]
        self.secrets = [*config.secrets, *env_keys]
        self.store = ServiceStore(config.store, secrets=self.secrets)
        self.store.interrupt_batches()  # a batch left running by a server that is gone
        self.auth = Auth(config.token)
        self.receiver = MountedReceiver(public_url=config.public_url, max_body=config.max_body)
        guard = AddressGuard.make(allow_private_urls=config.allow_private_urls)
        self.notifier = Notifier(
            config.signing_secret,
            guard,
            self.store.add_notification,
            attempts=config.notify_attempts,
            first_delay=config.notify_first_delay,
        )
        self._runners: dict[str, Runner] = {}
        callbacks_ok = bool(config.public_url) or any(e.sandbox for e in config.endpoints.values())
        self.runs = Runs(
            self.store,
            self.runner_for,
            sandbox_id=config.sandbox_id,
            on_end=self._run_ended,
            callbacks_ok=callbacks_ok,
            engine=config.engine,
        )
        self.batches = Batches(
            self.store,
            self.runner_for,
            sandbox_id=config.sandbox_id,
            concurrency=config.batch_concurrency,
            secrets_=self.secrets,
            on_end=self._batch_ended,
            engine=config.engine,
        )
        self.app = build_app(self)
        self.limits = ConnectionLimits(max_body_bytes=config.max_body)
        self._server: Server | None = None

    def __repr__(self) -> str:
        return f"Service({self.config!r})"

    def runner_for(self, provider: str) -> Runner:
        """The one Runner of a provider (one client, one limiter), made on first use."""
        runner = self._runners.get(provider)
        if runner is None:
            endpoint = self.config.endpoints.get(provider, Endpoint())
            scale = self.config.time_scale
            runner = Runner(
                api_key=endpoint.api_key,
                provider=provider,
                base_url=endpoint.base_url,
                retry=RetryPolicy.on_clock(5, scale),
                limits=self.config.limits,
                limiter=self.config.engine.limiters if self.config.engine else self.config.limiter,
                poll_scale=scale,
                receiver=self.receiver,
                allow_private_urls=self.config.allow_private_urls,
            )
            self._runners[provider] = runner
        return runner

    def engine_status(self) -> dict[str, Any]:
        """Where runs are done: here, or on Celery workers (their health, the queue's depth)."""
        if self.config.engine is None:
            return {"engine": "embedded", "workers": [], "alive": 1, "queue": None}
        return self.config.engine.status()

    def bind(self, base_url: str) -> None:
        """Where the app is served (the callback receiver's URLs without --public-url)."""
        self.receiver.bind(base_url)

    def _run_ended(self, run_id: str, notify_url: str | None) -> None:
        if notify_url:
            view = run_view(self.store.get(run_id), self.secrets)
            self.notifier.send(notify_url, run_id, "run.finished", {"run": view})

    def _batch_ended(self, batch_id: str, notify_url: str | None) -> None:
        view = self.batches.view(batch_id)
        if notify_url and view is not None:
            self.notifier.send(notify_url, batch_id, "batch.finished", {"batch": view})

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on the running event loop; the base URL. OSError if it cannot listen."""
        self._server = Server(self.app, limits=self.limits, name="dreamnodes-serve")
        await self._server.start(host, port)
        self.bind(self._server.base_url)
        return self._server.base_url

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None
        await self.aclose()

    async def aclose(self) -> None:
        """Stop runs (recorded `interrupted`) and batches, then close everything."""
        await self.runs.aclose()
        await self.batches.aclose()
        await self.notifier.aclose()
        if self.config.engine is not None:
            await self.config.engine.aclose()
        await self.receiver.stop()
        for runner in self._runners.values():
            with contextlib.suppress(Exception):
                await runner.aclose()
        self._runners.clear()
        self.store.close()


@contextlib.contextmanager
def serve_in_thread(
    config: ServiceConfig, host: str = "127.0.0.1", port: int = 0
) -> Iterator[tuple[Service, str]]:
    """A service on a thread of its own: `with serve_in_thread(cfg) as (service, url): ...`."""
    service = Service(config)
    server = ThreadedServer(
        service.app,
        host,
        port,
        limits=service.limits,
        name="dreamnodes-serve",
        on_stop=service.aclose,
    )
    url = server.start()
    service.bind(url)
    try:
        yield service, url
    finally:
        server.stop()
