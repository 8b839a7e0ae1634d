"""A tiny asyncio HTTP/1.1 server on h11, shared by the sandbox and the webhook receiver.

It knows nothing about any API: a handler gets a `Request` and returns a `Response`
(which may ask to be sent late or cut short) or `DROP` (close without answering).
Keep-alive is supported; request bodies are capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import h11

__all__ = [
    "DROP",
    "Drop",
    "Handler",
    "LocalServer",
    "Request",
    "Response",
    "ThreadedServer",
    "json_response",
]

_READ_SIZE: Final = 65536
T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """One HTTP request as the handler sees it; header names are lower-case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    client: str = ""


@dataclass
class Response:
    """An answer. `delay` waits before sending; `truncate_at` sends only that many body bytes
    (Content-Length still says the full size) and then closes the connection."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    truncate_at: int | None = None


class Drop:
    """Close the connection without answering (after `delay` seconds)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def __repr__(self) -> str:
        return f"Drop(delay={self.delay})"


DROP: Final = Drop()

Handler = Callable[[Request], Awaitable[Response | Drop]]


def json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer from already-encoded bytes."""
    merged = {"content-type": "application/json"}
    if headers:
        merged.update(headers)
    return Response(status, merged, body)


class _BodyTooLarge(Exception):
    pass


class LocalServer:
    """Serve `handler` on host:port until `stop()`."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_body_bytes: int = 16 * 1024 * 1024,
        idle_timeout: float = 75.0,
        server_name: str = "dreamnodes-local",
    ) -> None:
        self._handler = handler
        self._max_body = max_body_bytes
        self._idle_timeout = idle_timeout
        self._server_header = server_name.encode()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.host = ""
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Bind and start accepting; return the bound (host, port)."""
        self._server = await asyncio.start_server(self._on_connect, host, port, backlog=512)
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = str(sockname[0]), int(sockname[1])
        return self.host, self.port

    async def stop(self) -> None:
        """Stop accepting and close every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            # A cancel during shutdown must not escape: asyncio would log it as an error.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _next_event(
        self, conn: h11.Connection, reader: asyncio.StreamReader, timeout: float
    ) -> Any:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(reader.read(_READ_SIZE), timeout)
            conn.receive_data(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        peer = writer.get_extra_info("peername")
        client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""
        while True:
            try:
                event = await self._next_event(conn, reader, self._idle_timeout)
            except (TimeoutError, h11.RemoteProtocolError):
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    with contextlib.suppress(Exception):
                        await self._send(conn, writer, Response(400, {}, b"Bad Request"), False)
                return
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):
                return
            try:
                request = await self._read_request(conn, reader, event, client)
            except _BodyTooLarge:
                await self._send(conn, writer, Response(413, {}, b"Payload Too Large"), False)
                await _linger(reader, writer)
                return
            except (TimeoutError, h11.RemoteProtocolError):
                return
            result = await self._handler(request)
            if result.delay > 0:
                await asyncio.sleep(result.delay)
            if isinstance(result, Drop):
                return
            await self._send(conn, writer, result, request.method == "HEAD")
            if result.truncate_at is not None or conn.our_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _read_request(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        event: h11.Request,
        client: str,
    ) -> Request:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise _BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            part = await self._next_event(conn, reader, 30.0)
            if isinstance(part, h11.Data):
                size += len(part.data)
                if size > self._max_body:
                    raise _BodyTooLarge
                chunks.append(bytes(part.data))
            elif isinstance(part, h11.EndOfMessage):
                break
            else:
                raise h11.RemoteProtocolError("unexpected event")
        target = event.target.decode("latin-1")
        split = urlsplit(target)
        return Request(
            method=event.method.decode("ascii").upper(),
            path=unquote(split.path),
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers=headers,
            body=b"".join(chunks),
            client=client,
        )

    async def _send(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, resp: Response, head: bool
    ) -> None:
        headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()
        ]
        names = {k for k, _ in headers}
        if b"content-length" not in names:
            headers.append((b"content-length", str(len(resp.body)).encode()))
        if b"server" not in names:
            headers.append((b"server", self._server_header))
        if resp.truncate_at is not None:
            headers.append((b"connection", b"close"))
        data = conn.send(h11.Response(status_code=resp.status, headers=headers))
        body = b"" if head else resp.body
        if resp.truncate_at is not None:
            # Send part of the body outside h11 (it would refuse a short message), then close.
            writer.write(data + body[: resp.truncate_at])
            await writer.drain()
            return
        if body:
            data += conn.send(h11.Data(data=body))
        data += conn.send(h11.EndOfMessage())
        writer.write(data)
        await writer.drain()


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Let a client still sending a refused body read our answer instead of a reset.

    Closing with unread data in the receive buffer makes the kernel send a reset, which can
    destroy the 413 in flight; so stop writing, then read and discard for a short, bounded while.
    """
    with contextlib.suppress(Exception):
        if writer.can_write_eof():
            writer.write_eof()
        budget = 4 * 1024 * 1024
        async with asyncio.timeout(1.0):
            while budget > 0:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                budget -= len(chunk)


class ThreadedServer:
    """Run a `LocalServer` on its own event loop in a background thread."""

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        on_start: Callable[[], Coroutine[Any, Any, None]] | None = None,
        on_stop: Callable[[], Coroutine[Any, Any, None]] | None = None,
        max_body_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._server = LocalServer(handler, max_body_bytes=max_body_bytes)
        self._host = host
        self._port = port
        self._on_start = on_start
        self._on_stop = on_stop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("server not started")
        return self._loop

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> str:
        """Start serving; return the base URL (`http://host:port`) once connections are accepted."""
        if self._thread is not None:
            return self.base_url
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="localserver", daemon=True)
        self._thread.start()
        host, port = self.call(self._server.start(self._host, self._port))
        if self._on_start is not None:
            self.call(self._on_start())
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run a coroutine on the server's loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop serving and end the thread."""
        if self._thread is None or self._loop is None:
            return
        loop = self._loop

        async def shutdown() -> None:
            await self._server.stop()
            if self._on_stop is not None:
                await self._on_stop()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.call(shutdown(), timeout=10.0)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10.0)
        loop.close()
        self._thread = None
        self._loop = None

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
