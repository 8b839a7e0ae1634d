"""The HTTP servers of dreamnodes (the callback receiver, the sandbox): Starlette apps on
uvicorn, behind a guard that bounds connections and how long a client may take to send a
request. `Server` runs on the caller's event loop, `ThreadedServer` on a thread of its own."""

from dreamnodes.serving.guard import ConnectionLimits
from dreamnodes.serving.responses import (
    BodyTooLarge,
    ClientDisconnect,
    DropConnection,
    TruncatedResponse,
    read_body,
)
from dreamnodes.serving.runner import Server, ThreadedServer, fd_budget, raise_fd_limit

__all__ = [
    "BodyTooLarge",
    "ClientDisconnect",
    "ConnectionLimits",
    "DropConnection",
    "Server",
    "ThreadedServer",
    "TruncatedResponse",
    "fd_budget",
    "raise_fd_limit",
    "read_body",
]
