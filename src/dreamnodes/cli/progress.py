"""A loop's progress, drawn as one line on a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from dreamnodes.runlog.loops import Progress


class ProgressBar:
    """Draws a loop's progress as one line on a terminal; draws nothing elsewhere.

    Use it as `on_progress`; call `close()` at the end to leave the final line.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        width: int = 20,
        min_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval = min_interval
        self._clock = clock
        self._enabled = _is_terminal(self.stream)
        self._last_drawn = float("-inf")
        self._latest: Progress | None = None
        self._closed = False

    def __call__(self, progress: Progress) -> None:
        self._latest = progress
        if not self._enabled or self._closed:
            return
        now = self._clock()
        if progress.done >= progress.total:
            self.close()
        elif now - self._last_drawn >= self.min_interval:
            self._last_drawn = now
            self._draw(progress, end="")

    def close(self) -> None:
        """Draw the latest progress once more and end the line (once)."""
        if not self._enabled or self._closed:
            return
        self._closed = True
        if self._latest is not None:
            self._draw(self._latest, end="\n")

    def _draw(self, progress: Progress, *, end: str) -> None:
        self.stream.write("\r" + render(progress, self.width) + "\x1b[K" + end)
        self.stream.flush()


def render(progress: Progress, width: int = 20) -> str:
    """`[#####.....] 42/100 done, 3 failed, 10 running, 1.2/s, 48s left`"""
    share = progress.done / progress.total if progress.total else 1.0
    filled = min(width, int(share * width))
    parts = [
        f"[{'#' * filled}{'.' * (width - filled)}] {progress.done}/{progress.total} done",
        f"{progress.failed} failed",
    ]
    if progress.skipped:
        parts.append(f"{progress.skipped} not run")
    parts += [f"{progress.running} running", f"{progress.rate:.1f}/s"]
    if progress.done >= progress.total:
        parts.append(f"{_duration(progress.elapsed)} total")
    elif progress.eta is not None:
        parts.append(f"{_duration(progress.eta)} left")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False
