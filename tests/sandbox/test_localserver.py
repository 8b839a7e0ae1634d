"""The shared local HTTP server: keep-alive, body cap, and the fault actions."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from dreamnodes.localserver import DROP, Drop, Request, Response, ThreadedServer


async def handler(req: Request) -> Response | Drop:
    if req.path == "/drop":
        return DROP
    if req.path == "/slow":
        return Response(200, {}, b"late", delay=0.3)
    if req.path == "/cut":
        return Response(200, {"content-type": "application/json"}, b'{"a": 12345}', truncate_at=4)
    body = f"{req.method} {req.path} {req.query} {len(req.body)} {req.headers.get('x-k', '')}"
    return Response(200, {"content-type": "text/plain"}, body.encode())


@pytest.fixture
def server() -> Iterator[ThreadedServer]:
    srv = ThreadedServer(handler, max_body_bytes=1000)
    srv.start()
    yield srv
    srv.stop()


def test_answers_and_keeps_the_connection_alive(server: ThreadedServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        first = client.post("/a?x=1", content=b"hello", headers={"X-K": "v"})
        second = client.get("/b")
    assert first.status_code == 200
    assert first.text == "POST /a {'x': '1'} 5 v"
    assert second.text == "GET /b {} 0 "


def test_keep_alive_reuses_one_socket(server: ThreadedServer) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port))
    request = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
    sock.sendall(request + request)
    time.sleep(0.2)
    data = sock.recv(65536)
    sock.close()
    assert data.count(b"HTTP/1.1 200") == 2


def test_body_over_the_cap_is_refused_with_413(server: ThreadedServer) -> None:
    response = httpx.post(server.base_url + "/big", content=b"x" * 2000)
    assert response.status_code == 413


def test_a_streamed_body_over_the_cap_gets_the_413_not_a_reset(server: ThreadedServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(200):  # 200 kB announced by nothing: chunked transfer encoding
            yield b"x" * 1000

    for _ in range(5):
        response = httpx.post(server.base_url + "/big", content=chunks())
        assert response.status_code == 413


def test_drop_closes_without_answer(server: ThreadedServer) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(server.base_url + "/drop")


def test_delay_and_truncation(server: ThreadedServer) -> None:
    start = time.monotonic()
    assert httpx.get(server.base_url + "/slow").text == "late"
    assert time.monotonic() - start >= 0.3
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(server.base_url + "/cut")


def test_head_sends_no_body(server: ThreadedServer) -> None:
    response = httpx.head(server.base_url + "/h")
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0
