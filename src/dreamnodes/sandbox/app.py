"""The sandbox server: one handler that routes to Luma, Pixazo or the assets, applying auth,
faults and the request log; `Sandbox` runs it on a background thread."""

from __future__ import annotations

import copy
import re
from types import TracebackType
from typing import Any

from dreamnodes.localserver import DROP, Drop, Request, Response, ThreadedServer
from dreamnodes.sandbox import luma, pixazo
from dreamnodes.sandbox.config import SandboxConfig
from dreamnodes.sandbox.engine import ASSET_PREFIX, Engine
from dreamnodes.sandbox.errors import ApiError
from dreamnodes.sandbox.faults import Fault, Faults
from dreamnodes.sandbox.http import detail, json_answer
from dreamnodes.sandbox.limits import Limits, retry_after_headers
from dreamnodes.sandbox.store import Store

LogEntry = tuple[str, str, int | str]
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class SandboxApp:
    """Everything that lives on the server's event loop."""

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
        self.faults = Faults(cfg)
        self.log: list[LogEntry] = []

    async def started(self, base_url: str) -> None:
        self.engine.base_url = base_url
        self.engine.resume()

    async def stopped(self) -> None:
        await self.engine.close()
        self.store.close()

    async def handle(self, req: Request) -> Response | Drop:
        result = await self._answer(req)
        status: int | str = "dropped" if isinstance(result, Drop) else result.status
        if isinstance(result, Response) and result.truncate_at is not None:
            status = f"{status} truncated"
        self.log.append((req.method, req.path, status))
        return result

    async def _answer(self, req: Request) -> Response | Drop:
        path = req.path
        if path.startswith(ASSET_PREFIX) and req.method in ("GET", "HEAD"):
            return await self._asset(req, path[len(ASSET_PREFIX) :])
        if path.startswith(luma.PREFIX + "/") or path == luma.PREFIX:
            sub = path[len(luma.PREFIX) :]
            provider = "luma"
            creates = luma.is_create(req.method, sub)
        elif pixazo.matches(path):
            sub = path
            provider = "pixazo"
            creates = req.method == "POST" and path == pixazo.CREATE_PATH
        else:
            return detail(404, "Not Found")
        fault = self.faults.draw(creates) if sub != "/ping" else None
        early = self._early_fault(fault, provider)
        if early is not None:
            return early
        try:
            if provider == "luma":
                response = await self.luma.handle(req, sub)
            else:
                response = await self.pixazo.handle(req)
        except ApiError as exc:
            response = detail(exc.status, exc.detail, exc.headers)
        ok = 200 <= response.status < 300
        if fault == "drop_after" and ok:
            return DROP
        if fault == "truncated" and ok and response.body:
            response.truncate_at = len(response.body) // 2
        if fault == "slow":
            response.delay = self.cfg.scaled(self.cfg.slow_seconds)
        return response

    def _early_fault(self, fault: Fault | None, provider: str) -> Response | Drop | None:
        if fault == "drop_before":
            return DROP
        if fault == "429":
            headers = retry_after_headers(self.cfg.scaled(1.0))
            if provider == "pixazo":
                return json_answer(
                    429, {"error": "Too Many Requests", "message": "Rate limit exceeded"}, headers
                )
            return detail(429, "Too many requests, please slow down", headers)
        if fault in ("500", "503"):
            text = "Internal Server Error" if fault == "500" else "Service Unavailable"
            if provider == "pixazo":
                return json_answer(int(fault), {"error": text, "message": text})
            return detail(int(fault), text)
        return None

    async def _asset(self, req: Request, name: str) -> Response:
        found = await self.engine.asset(name)
        if found is None:
            return detail(404, "Not Found")
        data, content_type = found
        headers = {"content-type": content_type, "accept-ranges": "bytes"}
        match = _RANGE.match(req.headers.get("range", ""))
        if match and (match.group(1) or match.group(2)):
            size = len(data)
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
            else:
                start, end = max(0, size - int(match.group(2))), size - 1
            if start >= size or start > end:
                return Response(416, {"content-range": f"bytes */{size}"})
            headers["content-range"] = f"bytes {start}-{end}/{size}"
            return Response(206, headers, data[start : end + 1])
        return Response(200, headers, data)


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

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        app = SandboxApp(self.config)
        server = ThreadedServer(app.handle, self.config.host, self.config.port, on_stop=app.stopped)
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
