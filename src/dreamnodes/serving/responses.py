"""Reading a capped body, and the two ways to fail a request on purpose (fault injection):
`DropConnection` (close without answering) and `TruncatedResponse` (half a body, then close).
Both reach the connection through the scope extension our protocol adds; a client sees a
transport error, never a clean HTTP status."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Final

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from dreamnodes.serving.guard import EXTENSION

__all__ = ["BodyTooLarge", "ClientDisconnect", "DropConnection", "TruncatedResponse", "read_body"]

_LINGER: Final = 5.0  # seconds to wait for the server to notice the closed connection


class BodyTooLarge(Exception):
    """The request body is over the cap (answer 413)."""


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as it is known to exceed `max_bytes`;
    starlette's ClientDisconnect if the client goes away. Its deadline is the guard's."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _closer(scope: Scope) -> Callable[[], None]:
    hook = scope.get("extensions", {}).get(EXTENSION, {}).get("close")
    if not callable(hook):
        raise RuntimeError("this server cannot close a connection on request (not dreamnodes')")
    return hook  # type: ignore[no-any-return]


async def _hang_up(scope: Scope, receive: Receive) -> None:
    """Close the connection and wait until the server has seen it go, so that it neither
    answers 500 for us nor complains of a response never started."""
    _closer(scope)()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_LINGER):
            while (await receive())["type"] != "http.disconnect":
                pass


class DropConnection(Response):
    """Close the connection without answering, after `delay` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(status_code=502)  # never sent; 502 says "no answer" where it is shown
        self.delay = delay

    def __repr__(self) -> str:
        return f"DropConnection(delay={self.delay})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        await _hang_up(scope, receive)


class TruncatedResponse(Response):
    """`response`'s status and headers (its full Content-Length too) but only the first
    `keep` bytes of its body; then the connection is closed."""

    def __init__(self, response: Response, keep: int) -> None:
        super().__init__(status_code=response.status_code)
        self.raw_headers = [*response.raw_headers, (b"connection", b"close")]
        self.body = bytes(response.body)
        self.keep = keep

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, headers = self.status_code, self.raw_headers
        await send({"type": "http.response.start", "status": status, "headers": headers})
        part = self.body[: self.keep]
        await send({"type": "http.response.body", "body": part, "more_body": True})
        await _hang_up(scope, receive)
