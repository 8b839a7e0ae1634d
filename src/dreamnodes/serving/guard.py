"""What uvicorn lacks against idle and slow clients: a connection cap and per-phase deadlines.

uvicorn bounds nothing while a request is still arriving: a connection that never sends a byte,
or sends one header line every few seconds, is kept as long as the client likes, and
`limit_concurrency` answers 503 to *everyone* once idle sockets fill it. So every connection
here is in one phase, and the three phases in which the client owes us bytes are timed:

- idle: waiting for the first byte of a request (a new or kept-alive connection);
- head: the first byte came, the head is not complete (and may not exceed `max_head_bytes`);
- body: the head came, the body is not complete;
- busy: the request is complete and the app is answering (not timed: the app decides).

`Guard.sweep()`, called twice a second, closes connections past their phase's deadline. At
`max_connections` a new connection closes the oldest timed one (idle, mid-head or mid-body)
instead of being refused, so idle or dripping sockets can never keep a real request out.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import Any, Final

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

__all__ = ["EXTENSION", "ConnectionLimits", "Guard", "GuardedProtocol"]

EXTENSION: Final = "dreamnodes.connection"  # scope["extensions"][EXTENSION]["close"]: hang up

_IDLE, _HEAD, _BODY, _BUSY = range(4)


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections, and how long a client may take to send a request."""

    max_connections: int = 1000  # beyond this, the oldest connection still owing bytes goes
    idle_timeout: float = 15.0  # no request begun within this (new or kept-alive connection)
    head_timeout: float = 10.0  # from a request's first byte to the end of its head
    body_timeout: float = 30.0  # from the end of the head to the end of the body
    max_head_bytes: int = 64 * 1024
    max_body_bytes: int = 16 * 1024 * 1024  # enforced by the app (`read_body`), not here


class Guard:
    """The connections of one server, and which of them are on the clock."""

    def __init__(self, limits: ConnectionLimits, max_connections: int) -> None:
        self.limits = limits
        self.max_connections = max_connections
        self._open: set[GuardedProtocol] = set()
        # Timed connections, oldest phase start first (a dict keeps insertion order).
        self._timed: dict[GuardedProtocol, None] = {}
        self._timeouts = (limits.idle_timeout, limits.head_timeout, limits.body_timeout)

    def __len__(self) -> int:
        return len(self._open)

    def opened(self, conn: GuardedProtocol) -> None:
        self._open.add(conn)
        conn.enter(_IDLE)
        if len(self._open) > self.max_connections:
            # The new one is the newest timed connection: the oldest is someone else unless
            # every other connection is busy, and then there is no room for it.
            self.close(next(iter(self._timed)))

    def forget(self, conn: GuardedProtocol) -> None:
        self._open.discard(conn)
        self._timed.pop(conn, None)

    def timed(self, conn: GuardedProtocol, on: bool) -> None:
        self._timed.pop(conn, None)
        if on:
            self._timed[conn] = None

    def close(self, conn: GuardedProtocol) -> None:
        """Drop a connection at once: a client that owes us bytes may owe us reads too, so
        whatever is still unsent to it is discarded rather than waited for."""
        self.forget(conn)
        if conn.transport is not None:
            conn.transport.abort()

    def sweep(self, now: float) -> None:
        """Close every connection past its phase's deadline."""
        timeouts = self._timeouts
        expired = [c for c in self._timed if now - c.since >= timeouts[c.phase]]
        for conn in expired:
            self.close(conn)

    def close_all(self) -> None:
        for conn in list(self._open):
            self.close(conn)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, phase-tracked for its server's `Guard`."""

    def __init__(
        self,
        guard: Guard,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = guard
        self.phase = _IDLE
        self.since = 0.0
        self._head_bytes = 0
        self._in_message = False  # between the end of a head and the end of its body

    def enter(self, phase: int) -> None:
        if phase != self.phase or phase == _IDLE:
            self.phase = phase
            self.since = self.loop.time()
            self.guard.timed(self, phase != _BUSY)

    def _settle(self) -> None:
        if self._in_message:
            self.enter(_BODY)
        elif self.cycle is not None and not self.cycle.response_complete:
            self.enter(_BUSY)
        elif self._head_bytes:
            self.enter(_HEAD)
        else:
            self.enter(_IDLE)

    def hang_up(self) -> None:
        """Close the connection once what was written is sent; the app sends nothing more."""
        self.guard.forget(self)
        if not self.transport.is_closing():
            self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # asyncio sets this only on sockets it made with IPPROTO_TCP; without it a response
            # written as head then body waits for the client's delayed ACK (40 ms).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.guard.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.phase == _IDLE or self.phase == _HEAD:
            self._head_bytes += len(data)
            super().data_received(data)
            if self._head_bytes and self._head_bytes > self.guard.limits.max_head_bytes:
                self.guard.close(self)
                return
        else:
            super().data_received(data)
        self._settle()

    # httptools parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {EXTENSION: {"close": self.hang_up}}

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._head_bytes = 0
        self._in_message = True

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_message = False

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._settle()
