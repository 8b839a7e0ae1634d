"""A running slot freed anywhere wakes the creates waiting for one in every process at once.

The release scripts publish the slot's family on the limits' channel (`scripts.RELEASE`); a
process whose creates wait for a running slot listens on it with one daemon thread. A message
lost while Redis reconnects costs only the waiter's fallback poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import redis

__all__ = ["Wakeups"]


class Wakeups:
    """Listens on one channel while `start`ed, calling `wake(family)` for each freed slot."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self.channel = channel
        self._redis = client
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wake: Callable[[str], None] = lambda family: None

    def start(self, wake: Callable[[str], None]) -> None:
        """Listen (idempotent; the latest `wake` is the one called)."""
        self._wake = wake
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._listen, name="dreamnodes-wakeups", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(self.channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        data = message["data"]
                        self._wake(data.decode() if isinstance(data, bytes) else str(data))
                pubsub.close()
            except (redis.RedisError, OSError, ValueError):  # Redis away, or its client closed
                self._stop.wait(1.0)  # the waiters poll meanwhile
