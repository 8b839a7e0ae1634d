"""The one fake HTTP server of the tests: a handler served by Starlette on uvicorn, in a
background thread on a free loopback port (dreamnodes.serving, the runtime's own server).

    with FakeServer(handler) as server:   # handler(Request) -> Response (or awaitable of one)
        httpx.get(server.base_url + "/anything")

Return `DROP` (or `Drop(delay)`) to close the connection without answering; `json_response`
builds a JSON answer from bytes. A handler gets every method on every path.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response
from starlette.routing import Route

from dreamnodes.serving import (
    BodyTooLarge,
    ClientDisconnect,
    ConnectionLimits,
    DropConnection,
    ThreadedServer,
    TruncatedResponse,
    read_body,
)

__all__ = [
    "DROP",
    "Drop",
    "FakeServer",
    "Request",
    "Response",
    "TruncatedResponse",
    "json_response",
]

Drop = DropConnection
DROP = DropConnection()
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True)
class Request:
    """What the handler sees, already read; header names are lower-case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


Handler = Callable[[Request], Response | Awaitable[Response]]


def json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer from already-encoded bytes."""
    return Response(body, status, {"content-type": "application/json", **(headers or {})})


def app_for(handler: Handler, max_body_bytes: int = 16 * 1024 * 1024) -> Starlette:
    async def endpoint(request: StarletteRequest) -> Response:
        try:
            body = await read_body(request, max_body_bytes)
        except BodyTooLarge:
            return Response(b"Payload Too Large", 413)
        except ClientDisconnect:
            return DROP
        seen = Request(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers=dict(request.headers.items()),
            body=body,
        )
        answer = handler(seen)
        if inspect.isawaitable(answer):
            return await answer
        return answer

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=METHODS)])


class FakeServer(ThreadedServer):
    """`handler` on 127.0.0.1 and a free port; `base_url` once started."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_body_bytes: int = 16 * 1024 * 1024,
        limits: ConnectionLimits | None = None,
    ) -> None:
        super().__init__(app_for(handler, max_body_bytes), limits=limits, name="fake")

    def __enter__(self) -> FakeServer:
        self.start()
        return self
