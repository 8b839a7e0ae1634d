"""The temporary `.part` file a download writes before it becomes the target, all or nothing.

`PartFile` is created exclusively next to its target, written off the event loop, and made
visible only by an fsync and `os.replace`; `discard` (called on every way out: errors,
cancellation, Ctrl-C) removes it. A process killed outright (SIGKILL, power loss) cannot
clean up, so `sweep_stale` removes this package's own temporary files (and only those, by
their name pattern) that have not been written to for `STALE_AFTER` seconds; a download
calls it for its folder before it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

from dreamnodes.errors import DreamError

__all__ = ["STALE_AFTER", "PartFile", "in_thread", "sweep_stale"]

T = TypeVar("T")

STALE_AFTER: Final = 30 * 60.0
# `.<stem>.dreamnodes-<12 hex>.part`; also the older `.<stem>.<12 hex>.part` of earlier versions.
_OURS: Final = re.compile(r"\.[A-Za-z0-9][A-Za-z0-9._ -]*\.(?:dreamnodes-)?[0-9a-f]{12}\.part")


class PartFile:
    """A temporary file next to a download's target; `commit` renames it into place."""

    def __init__(self, folder: str, stem: str) -> None:
        self.folder = folder
        self.fd, self.path = _create(folder, stem)
        self.size = 0
        self.digest = hashlib.sha256()
        self._committed = False

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        await in_thread(_write_all, self.fd, data, self.digest)

    async def commit(self, target: str) -> None:
        """fsync, close and rename onto `target`: from here on the file is whole or absent."""
        await in_thread(os.fsync, self.fd)
        self._close()
        os.replace(self.path, target)
        self._committed = True
        _fsync_directory(self.folder)

    def discard(self) -> None:
        """Close and remove the temporary file unless it was committed; safe to call twice."""
        self._close()
        if not self._committed:
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def _close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def sweep_stale(folder: str, older_than: float = STALE_AFTER) -> list[str]:
    """Remove our own temporary files in `folder` untouched for `older_than` s; their names."""
    cutoff = time.time() - older_than
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not _OURS.fullmatch(entry.name):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed


def _create(folder: str, stem: str) -> tuple[int, str]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temp = os.path.join(folder, f".{stem[:60]}.dreamnodes-{secrets.token_hex(6)}.part")
        try:
            # 0o666 so the umask, not mkstemp's 0o600, decides the saved file's mode
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
        except OSError as exc:
            raise DreamError(
                "invalid_input",
                f"cannot write in the directory {folder!r}: {exc.strerror}",
                field="directory",
            ) from None


def _write_all(fd: int, data: bytes, digest: Any) -> None:
    digest.update(data)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_directory(folder: str) -> None:
    # Makes the rename itself durable; not possible (nor needed) on every platform.
    with contextlib.suppress(OSError, AttributeError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking file work off the event loop. If the caller is cancelled meanwhile, wait for
    the thread to let go of the file descriptor before the cancellation goes on to clean up."""
    future = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([future])
        raise
