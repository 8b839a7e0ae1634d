"""The callback receiver: Luma's (and Pixazo's) generation updates, POSTed to a per-run token URL.

Nothing signs a callback, so the URL carries an unguessable token (`secrets.token_urlsafe(32)`,
256 random bits) and only updates under a registered token are kept. Tokens are looked up in a
dict: a lookup only compares strings whose hashes already match, which an attacker cannot aim
for without knowing the token, so it leaks nothing a constant-time compare would protect.

Updates are idempotent and never move a generation backwards (queued < dreaming <
completed/failed, Pixazo's statuses normalised first); a terminal state is never replaced.
Everything runs on the event loop that called `start()`: a Starlette app on uvicorn, behind
dreamnodes.serving's connection guard (idle or slow clients cannot crowd out a real callback).
Bodies are never logged or echoed back.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import secrets
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dreamnodes.callbacks.updates import generation_from_callback
from dreamnodes.errors import DreamError
from dreamnodes.serving import (
    BodyTooLarge,
    ClientDisconnect,
    ConnectionLimits,
    DropConnection,
    Server,
    read_body,
)

__all__ = ["CallbackReceiver", "Registration"]

Generation = dict[str, Any]
UpdateListener = Callable[[Generation], None]

_PREFIX: Final = "/callbacks/"
_RANK: Final = {"queued": 0, "dreaming": 1, "completed": 2, "failed": 2}
_TERMINAL: Final = frozenset({"completed", "failed"})

_OK: Final = b'{"ok": true}'


def _answer(
    status: int, error: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    body = _OK if error is None else json.dumps({"ok": False, "error": error}).encode()
    return Response(body, status, headers, media_type="application/json")


async def _not_found(request: Request, exc: Exception) -> Response:
    return _answer(404, "not found")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return _answer(405, "method not allowed", {"allow": "POST"})


class Registration:
    """One token and the generations reported under it."""

    def __init__(
        self,
        receiver: CallbackReceiver,
        token: str,
        url: str,
        on_update: UpdateListener | None = None,
    ) -> None:
        self.token = token
        self.url = url
        self._receiver = receiver
        self._on_update = on_update
        self._latest: dict[str, Generation] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._closed = False

    def __repr__(self) -> str:
        # The token is a secret: whoever has it can post updates.
        state = "closed" if self._closed else "open"
        return f"Registration({len(self._latest)} generations, {state})"

    @property
    def closed(self) -> bool:
        return self._closed

    def listen(self, on_update: UpdateListener) -> None:
        """Call `on_update` with each update from now on (a hint: confirm it with a GET)."""
        self._on_update = on_update

    def latest(self, generation_id: str) -> Generation | None:
        """The furthest state received for this generation under this token, or None."""
        found = self._latest.get(generation_id)
        return copy.deepcopy(found) if found is not None else None

    async def wait(self, generation_id: str, timeout: float) -> Generation | None:
        """The generation once it is completed or failed; None on timeout or when closed.

        On None the caller falls back to polling.
        """
        found = self._latest.get(generation_id)
        if found is not None and found["state"] in _TERMINAL:
            return copy.deepcopy(found)
        if self._closed:
            return None
        event = self._events.setdefault(generation_id, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return None
        found = self._latest.get(generation_id)
        if found is not None and found["state"] in _TERMINAL:
            return copy.deepcopy(found)
        return None

    def close(self) -> None:
        """Unregister: later callbacks for this token are refused (404); waiters get None."""
        if self._closed:
            return
        self._closed = True
        self._receiver._forget(self.token)
        for event in self._events.values():
            event.set()

    def _apply(self, update: Generation) -> bool:
        """Keep `update` if it moves its generation forward; True if it changed anything."""
        gen_id = update["id"]
        current = self._latest.get(gen_id)
        if current is not None:
            if current["state"] in _TERMINAL:
                return False
            if _RANK[update["state"]] <= _RANK[current["state"]]:
                return False
        self._latest[gen_id] = update
        if update["state"] in _TERMINAL:
            event = self._events.get(gen_id)
            if event is not None:
                event.set()
        if self._on_update is not None:
            # A failing listener must not cost the update its 200 (Luma would resend it).
            with contextlib.suppress(Exception):
                self._on_update(copy.deepcopy(update))
        return True


class CallbackReceiver:
    """An HTTP server that takes generation callbacks at `{public_url}/callbacks/{token}`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        max_body: int = 1 << 20,
    ) -> None:
        if public_url is not None:
            parts = urlsplit(public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise DreamError(
                    "invalid_input",
                    "public_url: expected an http:// or https:// URL",
                    field="public_url",
                )
        if max_body < 1:
            raise DreamError("invalid_input", "max_body: must be at least 1 byte", field="max_body")
        self._host = host
        self._port = port
        self._public_url = public_url.rstrip("/") if public_url else None
        self._max_body = max_body
        app = Starlette(
            routes=[self.route()],
            exception_handlers={404: _not_found, 405: _not_allowed},
        )
        app.router.redirect_slashes = False  # /callbacks/{token}/ is a 404, not a redirect
        limits = ConnectionLimits(max_body_bytes=max_body)
        self._server = Server(app, limits=limits, name="dreamnodes-webhook")
        self._registrations: dict[str, Registration] = {}
        self._accepted = 0
        self._started = False

    @property
    def public_url(self) -> str | None:
        """The URL the receiver was told providers reach it by, if any."""
        return self._public_url

    @property
    def base_url(self) -> str:
        """How the provider reaches this receiver (public_url, else http://host:port)."""
        if self._public_url is not None:
            return self._public_url
        if not self._started:
            raise DreamError("invalid_input", "the callback receiver is not started")
        return self._server.base_url

    async def start(self) -> None:
        if self._started:
            return
        try:
            await self._server.start(self._host, self._port)
        except OSError as problem:
            raise DreamError(
                "network_error",
                f"cannot listen on {self._host}:{self._port} ({problem.strerror or problem})",
            ) from None
        self._started = True

    def route(self) -> Route:
        """`POST /callbacks/{token}`, answered by this receiver: for an app that serves the
        receiver's route itself (mounted at its root) instead of this receiver's own server."""
        return Route(_PREFIX + "{token}", self._handle, methods=["POST"])

    def close_registrations(self) -> None:
        """Close every open registration (its waiters get None)."""
        for registration in list(self._registrations.values()):
            registration.close()

    async def stop(self) -> None:
        """Stop serving; every open registration is closed (its waiters get None)."""
        self.close_registrations()
        if self._started:
            await self._server.stop()
            self._started = False

    async def __aenter__(self) -> CallbackReceiver:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def register(self, *, on_update: UpdateListener | None = None) -> Registration:
        """A new token and its callback URL. `on_update` is called with each update that
        moves a generation forward (not with duplicates or stale ones)."""
        token = secrets.token_urlsafe(32)
        registration = Registration(self, token, f"{self.base_url}{_PREFIX}{token}", on_update)
        self._registrations[token] = registration
        return registration

    def updates(self) -> int:
        """Callbacks accepted (answered 200) so far, duplicates and stale updates included."""
        return self._accepted

    def _forget(self, token: str) -> None:
        self._registrations.pop(token, None)

    async def _handle(self, request: Request) -> Response:
        """POST /callbacks/{token} (other paths are 404 and other methods 405 by routing)."""
        registration = self._registrations.get(request.path_params["token"])
        if registration is None:
            return _answer(404, "not found")
        try:
            body = await read_body(request, self._max_body)
        except BodyTooLarge:
            return _answer(413, "body too large")
        except ClientDisconnect:
            return DropConnection()  # nobody to answer
        try:
            update = generation_from_callback(body)
        except Exception:  # any malformed body (even a RecursionError) is a 400
            return _answer(400, "not a generation update")
        if update.get("state") not in _RANK or not update.get("id"):
            return _answer(400, "not a generation update")
        registration._apply(update)
        self._accepted += 1
        return _answer(200)
