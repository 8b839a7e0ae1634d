"""Deliver callbacks the way Luma does: POST JSON, a non-200 answer retried at most 3 times
100 ms apart, 5 s timeout per delivery. Runs as background tasks; never blocks a request."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

RETRIES = 3
RETRY_DELAY = 0.1
TIMEOUT = 5.0


class CallbackSender:
    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.log: list[tuple[str, int | str]] = []  # (url, status or error name) per attempt

    def send(
        self, url: str, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(payload).encode()
        task = asyncio.get_running_loop().create_task(self._deliver(url, body, headers or {}))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT)
        sent_headers = {"content-type": "application/json", **headers}
        for attempt in range(1 + RETRIES):
            if attempt:
                await asyncio.sleep(RETRY_DELAY)
            try:
                response = await self._client.post(url, content=body, headers=sent_headers)
                self.log.append((url, response.status_code))
                if response.status_code == 200:
                    return
            except httpx.HTTPError as exc:
                self.log.append((url, type(exc).__name__))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
