"""The sandbox server: a Starlette app that routes to Luma, the Luma Agents API, Pixazo or the
assets, applying auth, faults and the request log; `Sandbox` serves it on a background thread
(dreamnodes.serving)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dreamnodes.sandbox import agents, luma, pixazo
from dreamnodes.sandbox.config import SandboxConfig
from dreamnodes.sandbox.engine import ASSET_PREFIX, Engine
from dreamnodes.sandbox.errors import ApiError
from dreamnodes.sandbox.faults import Fault, Faults
from dreamnodes.sandbox.http import bytes_answer, detail, json_answer
from dreamnodes.sandbox.limits import Limits, retry_after_headers
from dreamnodes.sandbox.store import Store
from dreamnodes.serving import (
    BodyTooLarge,
    ClientDisconnect,
    ConnectionLimits,
    DropConnection,
    ThreadedServer,
    TruncatedResponse,
    read_body,
)

LogEntry = tuple[str, str, int | str]
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
SERVER_NAME = "dreamnodes-sandbox"
LIMITS = ConnectionLimits()
Endpoint = Callable[[Request, bytes], Awaitable[Response]]


class SandboxApp:
    """Everything that lives on the server's event loop; `asgi` is the app to serve."""

    def __init__(self, cfg: SandboxConfig) -> None:
        self.cfg = cfg
        self.store = Store(cfg.db)
        limits = Limits(
            cfg.limits,
            cfg.scaled(60.0),
            (cfg.video_concurrent, cfg.video_per_minute),
            (cfg.image_concurrent, cfg.image_per_minute),
        )
        self.engine = Engine(cfg, self.store, limits)
        self.luma = luma.LumaRoutes(self.engine, cfg.api_key)
        self.pixazo = pixazo.PixazoRoutes(self.engine, cfg.api_key)
        self.agents = agents.AgentsApi(cfg)
        self.faults = Faults(cfg)
        self.log: list[LogEntry] = []
        self.asgi = Starlette(
            routes=[
                Route(ASSET_PREFIX + "{name:path}", self._asset, methods=_METHODS),
                Route(luma.PREFIX + "{sub:path}", self._luma, methods=_METHODS),
                Route(agents.PREFIX + "{sub:path}", self._agents, methods=_METHODS),
                Route(agents.UPLOAD_PREFIX + "{file_id}", self._agents_upload, methods=_METHODS),
                Route(agents.OUTPUT_PREFIX + "{name:path}", self._agents_output, methods=_METHODS),
                Route(pixazo.CREATE_PATH, self._pixazo, methods=_METHODS),
                Route(pixazo.STATUS_PREFIX + "{rid:path}", self._pixazo, methods=_METHODS),
            ],
            exception_handlers={404: self._unrouted, 405: self._unrouted},
        )
        self.asgi.router.redirect_slashes = False

    async def started(self, base_url: str) -> None:
        self.engine.base_url = base_url
        self.agents.started(base_url)
        self.engine.resume()

    async def stopped(self) -> None:
        await self.engine.close()
        await self.agents.close()
        self.store.close()

    def _logged(self, req: Request, response: Response) -> Response:
        status: int | str = response.status_code
        if isinstance(response, DropConnection):
            status = "dropped"
        elif isinstance(response, TruncatedResponse):
            status = f"{status} truncated"
        self.log.append((req.method, req.scope["path"], status))
        return response

    async def _unrouted(self, req: Request, exc: Exception) -> Response:
        code = 405 if getattr(exc, "status_code", 404) == 405 else 404
        text = "Method Not Allowed" if code == 405 else "Not Found"
        return self._logged(req, detail(code, text))

    async def _luma(self, req: Request) -> Response:
        sub: str = req.path_params["sub"]
        if sub and not sub.startswith("/"):  # /dream-machine/v1x is not under the prefix
            return self._logged(req, detail(404, "Not Found"))

        async def route(req: Request, body: bytes) -> Response:
            return await self.luma.handle(req, sub, body)

        creates = luma.is_create(req.method, sub)
        return self._logged(req, await self._api(req, "luma", route, creates, sub != "/ping"))

    async def _agents(self, req: Request) -> Response:
        sub: str = req.path_params["sub"]
        if sub and not sub.startswith("/"):  # /agents/v1x is not under the prefix
            return self._logged(req, self.agents.stamp(req, detail(404, "Not Found")))

        async def route(req: Request, body: bytes) -> Response:
            return await self.agents.handle(req, sub, body)

        creates = req.method == "POST" and sub == "/generations"
        response = await self._api(req, "luma_agents", route, creates)
        return self._logged(req, self.agents.stamp(req, response))

    async def _agents_upload(self, req: Request) -> Response:
        upload = req.path_params["file_id"]
        return self._logged(req, await self.agents.upload(req, upload, LIMITS.max_body_bytes))

    async def _agents_output(self, req: Request) -> Response:
        found = self.agents.output(req, req.path_params["name"])
        if not isinstance(found, Response):
            found = bytes_answer(req, found.data, found.content_type)
        return self._logged(req, found)

    async def _pixazo(self, req: Request) -> Response:
        creates = req.method == "POST" and req.scope["path"] == pixazo.CREATE_PATH
        return self._logged(req, await self._api(req, "pixazo", self.pixazo.handle, creates))

    async def _api(
        self, req: Request, provider: str, route: Endpoint, creates: bool, faulty: bool = True
    ) -> Response:
        try:
            body = await read_body(req, LIMITS.max_body_bytes)
        except BodyTooLarge:
            return detail(413, "Payload Too Large")
        except ClientDisconnect:
            return DropConnection()
        fault = self.faults.draw(creates) if faulty else None
        early = self._early_fault(fault, provider)
        if early is not None:
            return early
        try:
            response = await route(req, body)
        except ApiError as exc:
            response = detail(exc.status, exc.detail, exc.headers)
        ok = 200 <= response.status_code < 300
        if fault == "drop_after" and ok:
            return DropConnection()
        if fault == "truncated" and ok and response.body:
            return TruncatedResponse(response, len(response.body) // 2)
        if fault == "slow":
            await asyncio.sleep(self.cfg.scaled(self.cfg.slow_seconds))
        return response

    def _early_fault(self, fault: Fault | None, provider: str) -> Response | None:
        if fault == "drop_before":
            return DropConnection()
        if fault == "429":
            headers = retry_after_headers(self.cfg.scaled(1.0))
            if provider == "pixazo":
                return json_answer(
                    429, {"error": "Too Many Requests", "message": "Rate limit exceeded"}, headers
                )
            if provider == "luma_agents":  # the anti-abuse ceiling: only Retry-After
                return detail(429, "Too Many Requests", {"retry-after": headers["retry-after"]})
            return detail(429, "Too many requests, please slow down", headers)
        if fault in ("500", "503"):
            text = "Internal Server Error" if fault == "500" else "Service Unavailable"
            if provider == "pixazo":
                return json_answer(int(fault), {"error": text, "message": text})
            return detail(int(fault), text)
        return None

    async def _asset(self, req: Request) -> Response:
        if req.method not in ("GET", "HEAD"):
            return self._logged(req, detail(404, "Not Found"))
        return self._logged(req, await self._asset_answer(req, req.path_params["name"]))

    async def _asset_answer(self, req: Request, name: str) -> Response:
        found = await self.engine.asset(name)
        if found is None:
            return detail(404, "Not Found")
        return bytes_answer(req, *found)


class Sandbox:
    """The sandbox on a background thread: `with Sandbox(cfg) as sb: sb.luma_url ...`."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._app: SandboxApp | None = None
        self._server: ThreadedServer | None = None
        self.base_url = ""

    @property
    def luma_url(self) -> str:
        return self.base_url + luma.PREFIX

    @property
    def pixazo_url(self) -> str:
        return self.base_url

    @property
    def luma_agents_url(self) -> str:
        return self.base_url + agents.PREFIX

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        app = SandboxApp(self.config)
        server = ThreadedServer(
            app.asgi,
            self.config.host,
            self.config.port,
            limits=LIMITS,
            name=SERVER_NAME,
            on_stop=app.stopped,
        )
        server.start()
        self.base_url = server.base_url
        server.call(app.started(self.base_url))
        self._app, self._server = app, server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None

    def _snapshot(self, fn: Any) -> Any:
        if self._server is None or self._app is None:
            raise RuntimeError("sandbox not started")

        async def read() -> Any:
            return copy.deepcopy(fn(self._app))

        return self._server.call(read())

    def generations(self) -> list[dict[str, Any]]:
        """Every Luma generation, oldest first."""
        result: list[dict[str, Any]] = self._snapshot(
            lambda app: [r["gen"] for r in app.store.all("luma")]
        )
        return result

    def pixazo_requests(self) -> list[dict[str, Any]]:
        """Every Pixazo job as its status answer, plus `input` (the create body)."""
        result: list[dict[str, Any]] = self._snapshot(
            lambda app: [
                app.pixazo.status(r) | {"input": r["pixazo"]["input"]}
                for r in app.store.all("pixazo")
            ]
        )
        return result

    def agents_generations(self) -> list[dict[str, Any]]:
        """Every Agents API generation (with `request`, the normalised create), oldest first."""
        result: list[dict[str, Any]] = self._snapshot(lambda app: app.agents.jobs.snapshot())
        return result

    def request_log(self) -> list[LogEntry]:
        """(method, path, status or "dropped") for every request seen, in order."""
        result: list[LogEntry] = self._snapshot(lambda app: list(app.log))
        return result

    def callback_log(self) -> list[tuple[str, int | str]]:
        """(url, status or error) for every callback/webhook delivery attempt."""
        result: list[tuple[str, int | str]] = self._snapshot(
            lambda app: list(app.engine.callbacks.log)
        )
        return result

    @property
    def credits(self) -> float:
        value: float = self._snapshot(lambda app: app.engine.credits)
        return value

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["Sandbox", "SandboxApp"]
