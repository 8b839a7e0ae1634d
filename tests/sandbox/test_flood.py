"""`dreamnodes sandbox serve` under a crowd of ~1,100 idle or dripping connections: a GET is
still answered within a few seconds."""

from __future__ import annotations

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
AUTH = {"Authorization": "Bearer flood"}


# The server starts with a soft file limit of 1024 (it raises its own), or is held to a
# hard one of 1024 (then its connection cap shrinks to fit, and it still answers).
CROWDS = [
    pytest.param(None, None, id="idle"),
    pytest.param(2.0, None, id="dripping"),
    pytest.param(2.0, 1024, id="dripping-hard-limit-1024"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("drip", "hard_fds"), CROWDS)
def test_a_crowd_of_idle_or_dripping_sockets_cannot_keep_a_get_out(
    drip: float | None, hard_fds: int | None
) -> None:
    ensure_fd_room()
    argv = ("sandbox", "serve", "--port", "0", "--no-render", "--time-scale", "50")
    proc = serve_command(*argv, hard_fds=hard_fds)
    stderr = Stderr(proc)
    try:
        luma_url = read_line(proc.stdout).removeprefix("luma: ")
        parts = urlsplit(read_line(proc.stdout).removeprefix("pixazo: "))
        assert parts.hostname is not None and parts.port is not None
        created = httpx.post(
            luma_url + "/generations", json={"prompt": "a crowd", "model": "ray-2"}, headers=AUTH
        )
        assert created.status_code == 201
        gen_url = f"{luma_url}/generations/{created.json()['id']}"

        def get(n: int) -> None:
            answer = httpx.get(gen_url, headers=AUTH, timeout=30)
            assert answer.status_code == 200
            assert answer.json()["id"] == created.json()["id"]

        with Flood(parts.hostname, parts.port, CONNECTIONS, drip) as flood:
            opened_in = flood.wait_until_open(CONNECTIONS)
            timings = time_requests(get)
            crowd = (flood.connects, flood.closed_by_server)
    finally:
        _, err = stop_command(proc, stderr)
    print(
        f"\nsandbox serve (hard file limit {hard_fds or 'as is'}),"
        f" {CONNECTIONS} {'dripping' if drip else 'idle'} sockets"
        f" (all connected in {opened_in:.2f} s; {crowd[0]} connects, {crowd[1]} closed by"
        f" the server): GETs answered in {timings} s"
    )
    assert max(timings) < MAX_SECONDS
    assert "Traceback" not in err
    assert "out of system resource" not in err  # never ran out of file descriptors
