"""A bounded, thread-safe LRU of rendered files that renders each key only once at a time."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable


class RenderCache:
    """Keeps at most `max_entries` files and `max_bytes` bytes, dropping the least recently used.

    Concurrent requests for the same key wait for one render instead of each doing it.
    """

    def __init__(self, max_entries: int = 64, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._files: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._rendering: dict[str, threading.Lock] = {}
        self.hits = self.misses = 0

    def _get(self, key: str) -> bytes | None:
        with self._lock:
            data = self._files.get(key)
            if data is not None:
                self._files.move_to_end(key)
                self.hits += 1
            return data

    def get_or_render(self, key: str, render: Callable[[], bytes]) -> bytes:
        cached = self._get(key)
        if cached is not None:
            return cached
        with self._lock:
            key_lock = self._rendering.setdefault(key, threading.Lock())
        with key_lock:
            cached = self._get(key)  # another thread may have rendered it meanwhile
            if cached is not None:
                return cached
            try:
                data = render()
                self._put(key, data)
            finally:
                with self._lock:
                    self._rendering.pop(key, None)
            return data

    def _put(self, key: str, data: bytes) -> None:
        with self._lock:
            self.misses += 1
            if len(data) > self.max_bytes:
                return
            self._files[key] = data
            self._size += len(data)
            while len(self._files) > self.max_entries or self._size > self.max_bytes:
                _, dropped = self._files.popitem(last=False)
                self._size -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._files.clear()
            self._size = 0
            self.hits = self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return self._size
