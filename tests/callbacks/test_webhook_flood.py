"""`dreamnodes webhook serve` under a crowd of ~1,100 idle or dripping connections: a real
callback is still answered (200) within a few seconds, and its update is printed."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx
import pytest
from flood import (
    CONNECTIONS,
    Flood,
    Stderr,
    ensure_fd_room,
    read_line,
    serve_command,
    stop_command,
    time_requests,
)

MAX_SECONDS = 3.0


def luma(gen_id: str) -> dict[str, object]:
    return {
        "id": gen_id,
        "generation_type": "video",
        "state": "dreaming",
        "failure_reason": None,
        "created_at": "2024-11-27T13:50:56Z",
        "assets": None,
        "model": "ray-2",
        "request": {"generation_type": "video", "model": "ray-2", "prompt": "a crowd"},
    }


# The server starts with a soft file limit of 1024 (it raises its own), or is held to a
# hard one of 1024 (then its connection cap shrinks to fit, and it still answers).
CROWDS = [
    pytest.param(None, None, id="idle"),
    pytest.param(2.0, None, id="dripping"),
    pytest.param(2.0, 1024, id="dripping-hard-limit-1024"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("drip", "hard_fds"), CROWDS)
def test_a_crowd_of_idle_or_dripping_sockets_cannot_keep_a_callback_out(
    drip: float | None, hard_fds: int | None
) -> None:
    ensure_fd_room()
    proc = serve_command("webhook", "serve", "--port", "0", hard_fds=hard_fds)
    stderr = Stderr(proc)
    try:
        url = read_line(proc.stdout)
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None

        def callback(n: int) -> None:
            answer = httpx.post(url, json=luma(f"g{n}"), timeout=30)
            assert answer.status_code == 200
            assert answer.json() == {"ok": True}

        with Flood(parts.hostname, parts.port, CONNECTIONS, drip) as flood:
            opened_in = flood.wait_until_open(CONNECTIONS)
            timings = time_requests(callback)
            crowd = (flood.connects, flood.closed_by_server)
    finally:
        out, err = stop_command(proc, stderr)
    print(
        f"\nwebhook serve (hard file limit {hard_fds or 'as is'}),"
        f" {CONNECTIONS} {'dripping' if drip else 'idle'} sockets"
        f" (all connected in {opened_in:.2f} s; {crowd[0]} connects, {crowd[1]} closed by"
        f" the server): callbacks answered in {timings} s"
    )
    assert max(timings) < MAX_SECONDS
    printed = [json.loads(line)["id"] for line in out.splitlines()]
    assert printed == [f"g{n}" for n in range(len(timings))]
    assert "Traceback" not in err
    assert "out of system resource" not in err  # never ran out of file descriptors
