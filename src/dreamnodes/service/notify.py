"""Signed notifications to a caller's `notify_url` when a run or a batch ends.

The body is JSON (`{"event": "run.finished" | "batch.finished", "delivery": id, "sent_at":
ISO time, "run" | "batch": {...}}`), and `X-Dreamnodes-Signature: sha256=<hex>` is the
HMAC-SHA256 of the exact body bytes with the server's signing secret: the receiver computes
the same over the raw body and compares in constant time; `sent_at` and `delivery` inside the
signed body let it refuse replays. The address is checked as downloads are (public only unless
the server allows private URLs) before every attempt, and the request goes to the checked
address (no DNS rebinding), no redirects followed. Attempts are retried with backoff on
network errors, 408, 429 and 5xx; each delivery's outcome is recorded beside the run log.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from typing import Any

import httpx

from dreamnodes.downloads.addresses import AddressGuard
from dreamnodes.errors import DreamError
from dreamnodes.runlog.records import now_iso

__all__ = ["SIGNATURE_HEADER", "Notifier", "sign"]

SIGNATURE_HEADER = "X-Dreamnodes-Signature"
_RETRIED = frozenset({408, 425, 429, 500, 502, 503, 504})

Record = Callable[[str, str, str, int, str | None], None]


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class Notifier:
    """Delivers notifications in the background; `aclose` cancels what is still pending."""

    def __init__(
        self,
        secret: str,
        guard: AddressGuard,
        record: Record,
        *,
        attempts: int = 5,
        first_delay: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._secret = secret
        self._guard = guard
        self._record = record
        self._attempts = max(1, attempts)
        self._first_delay = first_delay
        self._http = httpx.AsyncClient(
            transport=transport, timeout=10.0, follow_redirects=False, trust_env=False
        )
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return "Notifier(...)"

    async def check(self, url: str) -> None:
        """DreamError `invalid_input` on `notify_url` if the address may not be reached."""
        await self._guard.check(httpx.URL(url), field="notify_url", shown=_shown(url))

    def send(self, url: str, target: str, event: str, payload: dict[str, Any]) -> None:
        body = {"event": event, "delivery": "d_" + secrets.token_hex(8), "sent_at": now_iso()}
        body.update(payload)
        task = asyncio.get_running_loop().create_task(self._deliver(url, target, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, target: str, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, data),
            "X-Dreamnodes-Event": str(body["event"]),
            "X-Dreamnodes-Delivery": str(body["delivery"]),
            "User-Agent": "dreamnodes-serve",
        }
        error: str | None = None
        delay = self._first_delay
        for attempt in range(1, self._attempts + 1):
            try:
                status = await self._post(url, data, headers)
            except DreamError as refused:
                if refused.code == "invalid_input":  # no longer a public address: stop
                    self._record(target, url, "refused", attempt, refused.message)
                    return
                error = refused.message
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if 200 <= status < 300:
                    self._record(target, url, "delivered", attempt, None)
                    return
                error = f"HTTP {status}"
                if status not in _RETRIED:
                    self._record(target, url, "failed", attempt, error)
                    return
            if attempt < self._attempts:
                await asyncio.sleep(delay)
                delay *= 4
        self._record(target, url, "failed", self._attempts, error)

    async def _post(self, url: str, data: bytes, headers: dict[str, str]) -> int:
        parsed = httpx.URL(url)
        address = await self._guard.check(parsed, field="notify_url", shown=_shown(url))
        extensions: dict[str, Any] = {}
        target = parsed
        sent = dict(headers)
        if address is not None and parsed.host != str(address):
            sent["Host"] = parsed.netloc.decode("ascii")
            sent["Connection"] = "close"
            target = parsed.copy_with(host=str(address))
            if parsed.scheme == "https":
                extensions["sni_hostname"] = parsed.raw_host.decode("ascii")
        request = self._http.build_request(
            "POST", target, content=data, headers=sent, extensions=extensions
        )
        response = await self._http.send(request)
        await response.aclose()
        return response.status_code

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()


def _shown(url: str) -> str:
    """A URL as errors show it: no credentials, no query (a resume URL's token)."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{parsed.scheme}://{host}{port}{parsed.path}"
