"""Who holds a reservation: this process, named so that another process can tell if it died.

An owner is ``host:pid:start``, where ``start`` is when the process started (Linux's
``/proc/<pid>/stat`` start time, so a reused pid is not mistaken for its dead predecessor).
On the same host a dead owner is seen at once; on another host only its lease expiring tells.
"""

from __future__ import annotations

import os
import socket
from functools import cache

# A reservation's lease: renewed every LEASE / 3 seconds while its process lives.
LEASE = 30.0


def _start_of(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None where /proc is missing.

    A killed process its parent has not reaped yet (a zombie) starts at "" (never a match):
    it is dead, though its pid is still taken.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    if fields and fields[0] in (b"Z", b"X"):
        return ""
    return fields[19].decode() if len(fields) > 19 else None


@cache
def _host() -> str:
    return socket.gethostname() or "localhost"


def this_owner() -> str:
    """This process's owner name (per pid: a forked child is a new owner)."""
    return _owner_of(os.getpid())


@cache
def _owner_of(pid: int) -> str:
    return f"{_host()}:{pid}:{_start_of(pid) or '-'}"


def parse(owner: str) -> tuple[str, int, str] | None:
    host, _, rest = owner.rpartition(":")
    host, _, pid = host.rpartition(":")
    if not host or not pid.isdigit():
        return None
    return host, int(pid), rest


def alive(owner: str | None, lease_until: float | None, now: float) -> bool:
    """Whether the owner may still be working: its own host checks the process itself."""
    if not owner:
        return False
    parts = parse(owner)
    if parts is None or parts[0] != _host():
        return lease_until is not None and lease_until > now
    _, pid, start = parts
    if pid == os.getpid():
        return owner == this_owner()
    current = _start_of(pid)
    if current == "":
        return False  # a zombie
    if current is not None:
        return start in ("-", current)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process with that pid: alive, but maybe not ours
        return lease_until is not None and lease_until > now
    return True
