"""dreamnodes.serving (the servers' common ground) through the tests' FakeServer: keep-alive,
the body cap, the fault answers, and the guard's deadlines and connection cap."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from fakeserver import DROP, Drop, FakeServer, Request, Response, TruncatedResponse, json_response

from dreamnodes.serving import ConnectionLimits

FAST = ConnectionLimits(
    max_connections=8, idle_timeout=1.0, head_timeout=1.0, body_timeout=1.0, max_head_bytes=4096
)


async def handler(req: Request) -> Response:
    if req.path == "/drop":
        return DROP
    if req.path == "/late-drop":
        return Drop(delay=0.3)
    if req.path == "/slow":
        await asyncio.sleep(0.3)
        return Response(b"late")
    if req.path == "/cut":
        return TruncatedResponse(json_response(200, b'{"a": 12345}'), 4)
    if req.path == "/sleep":
        await asyncio.sleep(30)
    body = f"{req.method} {req.path} {req.query} {len(req.body)} {req.headers.get('x-k', '')}"
    return Response(body.encode(), 200, {"content-type": "text/plain"})


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(handler, max_body_bytes=1000) as srv:
        yield srv


@pytest.fixture
def strict() -> Iterator[FakeServer]:
    with FakeServer(handler, limits=FAST) as srv:
        yield srv


def connect(server: FakeServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.settimeout(5)
    return sock


def closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes `sock` (reading and discarding any answer)."""
    started = time.monotonic()
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_answers_and_keeps_the_connection_alive(server: FakeServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        first = client.post("/a?x=1", content=b"hello", headers={"X-K": "v"})
        second = client.get("/b")
    assert first.status_code == 200
    assert first.text == "POST /a {'x': '1'} 5 v"
    assert second.text == "GET /b {} 0 "
    assert first.headers["server"] == "fake"


def test_pipelined_requests_on_one_socket(server: FakeServer) -> None:
    sock = connect(server)
    request = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
    sock.sendall(request + request)
    data = b""
    while data.count(b"HTTP/1.1 200") < 2:
        data += sock.recv(65536)
    sock.close()


def test_body_over_the_cap_is_refused_with_413(server: FakeServer) -> None:
    response = httpx.post(server.base_url + "/big", content=b"x" * 2000)
    assert response.status_code == 413


def test_a_streamed_body_over_the_cap_gets_the_413_not_a_reset(server: FakeServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(200):  # 200 kB announced by nothing: chunked transfer encoding
            yield b"x" * 1000

    with httpx.Client(base_url=server.base_url) as client:
        for _ in range(5):
            assert client.post("/big", content=chunks()).status_code == 413
        assert client.get("/after").status_code == 200  # the connection is still good


def test_drop_closes_without_any_answer(server: FakeServer) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        httpx.get(server.base_url + "/drop")
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(server.base_url + "/late-drop")
    assert time.monotonic() - started >= 0.3


def test_slow_answer_and_truncation(server: FakeServer) -> None:
    started = time.monotonic()
    assert httpx.get(server.base_url + "/slow").text == "late"
    assert time.monotonic() - started >= 0.3
    with pytest.raises(httpx.RemoteProtocolError, match="received 4 bytes, expected 12"):
        httpx.get(server.base_url + "/cut")


def test_head_sends_no_body(server: FakeServer) -> None:
    response = httpx.head(server.base_url + "/h")
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0


def test_a_connection_that_sends_nothing_is_closed_after_the_idle_timeout(
    strict: FakeServer,
) -> None:
    assert 0.9 < closed_after(connect(strict)) < 2.5


def test_a_kept_alive_connection_is_closed_after_the_idle_timeout(strict: FakeServer) -> None:
    sock = connect(strict)
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    assert 0.9 < closed_after(sock) < 2.5


def test_a_head_dripped_line_by_line_is_cut_off_at_the_head_deadline(strict: FakeServer) -> None:
    sock = connect(strict)
    sock.settimeout(0.1)  # one header line every 0.1 s
    started = time.monotonic()
    sock.sendall(b"GET /x HTTP/1.1\r\n")
    line = 0
    while time.monotonic() - started < 5:
        try:
            if sock.recv(1) == b"":
                break  # closed by the server
        except TimeoutError:
            pass
        except OSError:
            break  # reset by the server
        line += 1
        try:
            sock.sendall(b"X-%d: y\r\n" % line)
        except OSError:
            break
    assert 0.9 < time.monotonic() - started < 2.5
    assert line > 5


def test_a_body_that_never_finishes_is_cut_off_at_the_body_deadline(strict: FakeServer) -> None:
    sock = connect(strict)
    sock.sendall(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n0123456789")
    assert 0.9 < closed_after(sock) < 2.5


def test_an_oversized_head_is_refused(strict: FakeServer) -> None:
    sock = connect(strict)
    sock.sendall(b"GET /x HTTP/1.1\r\n" + b"X-Big: " + b"y" * 5000)
    assert closed_after(sock) < 1.0


def test_at_the_cap_the_oldest_idle_connection_makes_room(strict: FakeServer) -> None:
    idle = [connect(strict) for _ in range(FAST.max_connections)]
    time.sleep(0.2)
    started = time.monotonic()
    assert httpx.get(strict.base_url + "/x").status_code == 200
    assert time.monotonic() - started < 0.5
    assert closed_after(idle[0]) < 0.5  # the oldest went first
    for sock in idle:
        sock.close()


def test_connections_at_work_are_never_evicted(strict: FakeServer) -> None:
    async def go() -> list[int]:
        async with httpx.AsyncClient(base_url=strict.base_url, timeout=10) as client:
            busy = [asyncio.create_task(client.get("/slow")) for _ in range(4)]
            await asyncio.sleep(0.1)
            crowd = [socket.create_connection(("127.0.0.1", strict.port)) for _ in range(10)]
            answers = await asyncio.gather(*busy)
            for sock in crowd:
                sock.close()
            return [a.status_code for a in answers]

    assert asyncio.run(go()) == [200] * 4


def test_stop_does_not_wait_for_a_request_that_takes_forever() -> None:
    server = FakeServer(handler)
    server.start()
    sock = connect(server)
    sock.sendall(b"GET /sleep HTTP/1.1\r\nHost: h\r\n\r\n")
    time.sleep(0.1)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    assert closed_after(sock) < 1
