"""Run an ASGI app on uvicorn: on the running event loop (`Server`) or on a thread of its own
(`ThreadedServer`), behind the connection `Guard`.

Only uvicorn's HTTP machinery is used (its config, server state and httptools protocol); the
listening socket, the clock and shutdown are ours, so that a port already taken is an OSError
(uvicorn would `sys.exit`) and no signal handler is installed behind the caller's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine
from email.utils import formatdate
from types import TracebackType
from typing import Any, TypeVar

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from dreamnodes.serving.guard import ConnectionLimits, Guard, GuardedProtocol

__all__ = ["Server", "ThreadedServer", "fd_budget", "raise_fd_limit"]

T = TypeVar("T")
_TICK = 0.5  # seconds between deadline sweeps (the Date header is refreshed every other tick)
_GRACE = 1.0  # seconds requests in progress get to finish on stop before they are cancelled
# asyncio accepts up to `backlog` connections per wake-up, each an open file before the guard
# sees it, and on Python 3.11 an accept that hits the file limit logs and retries in a tight
# loop. So it gets a small batch (the guard evicts between batches) and the kernel queue is
# widened again afterwards.
_ACCEPT_BATCH = 32
_LISTEN_QUEUE = 2048


def fd_budget() -> int | None:
    """How many connections fit under the soft file-descriptor limit, with room to spare
    for everything else the process opens; None where there is no such limit."""
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    # The spare quarter (at least 256) holds the process's other files and the few batches
    # of accepted connections the guard has not seen yet.
    return max(16, soft - max(256, soft // 4))


def raise_fd_limit(want: int = 8192) -> None:
    """Raise the soft file-descriptor limit towards `want` (never above the hard limit).
    For the serve commands, which own their process; a library never calls this."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Server:
    """Serve an ASGI app on the running event loop until `stop()`."""

    def __init__(
        self, app: ASGIApp, *, limits: ConnectionLimits | None = None, name: str = "dreamnodes"
    ) -> None:
        self.limits = limits or ConnectionLimits()
        self._app = app
        self._name = name
        self._listener: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._state = ServerState()
        self._stopping = False
        self.guard: Guard | None = None
        self.host = ""
        self.port = 0

    @property
    def base_url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}"

    async def _app_call(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._app(scope, receive, send)
        except asyncio.CancelledError:
            if not self._stopping:
                raise  # uvicorn reports it; on stop it is expected, and the client is gone

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Bind and start accepting; return the bound (host, port). OSError if it cannot."""
        config = Config(
            self._app_call,
            host=host,
            port=port,
            http=GuardedProtocol,
            interface="asgi3",
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            headers=[("server", self._name)],
            timeout_keep_alive=max(1, round(self.limits.idle_timeout)),
        )
        config.load()
        budget = fd_budget()
        cap = (
            self.limits.max_connections
            if budget is None
            else min(self.limits.max_connections, budget)
        )
        guard = Guard(self.limits, cap)
        state = self._state

        def protocol() -> GuardedProtocol:
            return GuardedProtocol(guard, config=config, server_state=state, app_state={})

        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(protocol, host, port, backlog=_ACCEPT_BATCH)
        for listening in self._listener.sockets:
            with listening.dup() as same:  # the same socket: widen its queue
                same.listen(_LISTEN_QUEUE)
        sockname = self._listener.sockets[0].getsockname()
        self.host, self.port = str(sockname[0]), int(sockname[1])
        self.guard = guard
        self._stopping = False
        self._refresh_headers(config)
        self._ticker = loop.create_task(self._tick(config, guard))
        return self.host, self.port

    def _refresh_headers(self, config: Config) -> None:
        date = formatdate(time.time(), usegmt=True).encode()
        self._state.default_headers = [(b"date", date), *config.encoded_headers]

    async def _tick(self, config: Config, guard: Guard) -> None:
        loop = asyncio.get_running_loop()
        count = 0
        while True:
            await asyncio.sleep(_TICK)
            count += 1
            guard.sweep(loop.time())
            if count % 2 == 0:
                self._refresh_headers(config)

    async def stop(self) -> None:
        """Stop accepting, close every connection, give requests in progress a moment."""
        if self._listener is None:
            return
        self._stopping = True
        self._listener.close()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self.guard is not None:
            self.guard.close_all()
        tasks = set(self._state.tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._listener.wait_closed()
        self._listener = None


class ThreadedServer:
    """A `Server` on its own event loop in a background thread."""

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: ConnectionLimits | None = None,
        name: str = "dreamnodes",
        on_stop: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self.server = Server(app, limits=limits, name=name)
        self._host = host
        self._port = port
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
        return self.server.port

    def start(self) -> str:
        """Start serving; return the base URL (`http://host:port`) once connections are accepted."""
        if self._thread is not None:
            return self.base_url
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="dreamnodes-server")
        self._thread.daemon = True
        self._thread.start()
        try:
            self.call(self.server.start(self._host, self._port))
        except BaseException:
            self._end_loop()
            raise
        self.base_url = self.server.base_url
        return self.base_url

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run a coroutine on the server's loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop serving and end the thread."""
        if self._thread is None or self._loop is None:
            return

        async def shutdown() -> None:
            await self.server.stop()
            if self._on_stop is not None:
                await self._on_stop()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.call(shutdown(), timeout=10.0)
        self._end_loop()

    def _end_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10.0)
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
