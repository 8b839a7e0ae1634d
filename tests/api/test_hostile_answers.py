"""Answers no API should send: huge, compressed past the cap, broken gzip, absurdly nested.

Each is an error the user can read (never a MemoryError, a RecursionError or an httpx
exception), and for a create an unreadable answer is a lost one: looked for, never sent twice.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from dreamnodes.api.client import MAX_ANSWER_BYTES, ApiClient, ApiRequest, ApiResponse, FindCreated
from dreamnodes.api.retry import RetryPolicy
from dreamnodes.errors import DreamError
from dreamnodes.execution.runner import Runner

BASE = "https://api.test/dream-machine/v1"
KEY = "sk-test-0123456789abcdef"
PING = ApiRequest(method="GET", path="/ping")
CREATE = ApiRequest(
    method="POST",
    path="/generations/video",
    json={"model": "ray-2", "prompt": "a tiger in snow"},
    billable=True,
)
GENERATION = {
    "id": "7ca76429-99d1-46ab-bb2e-84baa4acdb04",
    "state": "queued",
    "generation_type": "video",
    "model": "ray-2",
    "created_at": "2025-01-01T00:00:00Z",
    "assets": None,
    "request": {"generation_type": "video", "model": "ray-2", "prompt": "a tiger in snow"},
}
Handler = Callable[[httpx.Request], httpx.Response]


class Drip(httpx.AsyncByteStream):
    """A body produced chunk by chunk on demand, remembering how much was pulled."""

    def __init__(self, chunk: bytes, count: int) -> None:
        self.chunk = chunk
        self.count = count
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.pulled += len(self.chunk)
            yield self.chunk


def streamed(status: int, body: bytes, **headers: str) -> httpx.Response:
    """An answer left unread, as a real transport hands it over."""
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))


def gzipped(value: Any) -> bytes:
    return gzip.compress(json.dumps(value).encode())


def client_for(
    handler: Handler,
    *,
    public: bool = False,
    find_created: FindCreated | None = None,
    max_attempts: int = 3,
) -> ApiClient:
    async def no_sleep(seconds: float) -> None:
        pass

    policy = RetryPolicy(max_attempts=max_attempts, jitter=False)
    transport = httpx.MockTransport(handler)
    if public:  # a host's own httpx client: the public send path
        http = httpx.AsyncClient(base_url=BASE, transport=transport)
        return ApiClient(
            base_url=BASE,
            auth_headers={"Authorization": f"Bearer {KEY}"},
            policy=policy,
            http=http,
            find_created=find_created,
            sleep=no_sleep,
        )
    return ApiClient(
        base_url=BASE,
        auth_headers={"Authorization": f"Bearer {KEY}"},
        policy=policy,
        transport=transport,
        find_created=find_created,
        sleep=no_sleep,
    )


def send(client: ApiClient, request: ApiRequest) -> ApiResponse:
    async def go() -> ApiResponse:
        async with client:
            return await client.send(request)

    return asyncio.run(go())


def fail(client: ApiClient, request: ApiRequest) -> DreamError:
    with pytest.raises(DreamError) as caught:
        send(client, request)
    return caught.value


PATHS = pytest.mark.parametrize("public", [False, True], ids=["direct", "public"])


# --- the size cap ------------------------------------------------------------------------------


@PATHS
def test_the_client_asks_for_an_uncompressed_answer(public: bool) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    send(client_for(handler, public=public), PING)
    assert seen[0].headers["accept-encoding"] == "identity"


@PATHS
def test_a_declared_oversized_answer_is_refused_unread_and_not_retried(public: bool) -> None:
    drip = Drip(b"x" * 65536, 10_000)  # 655 MB if anyone read it
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, headers={"content-length": str(655_360_000)}, stream=drip)

    error = fail(client_for(handler, public=public), PING)
    assert drip.pulled == 0
    assert len(calls) == 1
    assert (error.code, error.status, error.retryable) == ("provider_error", 200, False)
    assert "too large" in error.message and "16 MiB" in error.message
    assert "655360000 bytes" in error.message


@PATHS
def test_an_undeclared_oversized_answer_stops_at_the_cap(public: bool) -> None:
    drip = Drip(b"[" + b" " * 65535, 10_000)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=drip)

    error = fail(client_for(handler, public=public), PING)
    assert MAX_ANSWER_BYTES < drip.pulled <= MAX_ANSWER_BYTES + 65536
    assert (error.code, error.retryable) == ("provider_error", False)
    assert "too large to read" in error.message


@PATHS
def test_a_small_gzip_answer_that_inflates_past_the_cap_is_refused(public: bool) -> None:
    bomb = gzip.compress(b" " * (MAX_ANSWER_BYTES + 1))
    assert len(bomb) < 100_000

    def handler(request: httpx.Request) -> httpx.Response:
        return streamed(200, bomb, **{"content-encoding": "gzip"})

    error = fail(client_for(handler, public=public), PING)
    assert (error.code, error.retryable) == ("provider_error", False)
    assert "inflates to more than" in error.message


@PATHS
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate", "identity"])
def test_a_compressed_answer_the_server_sent_anyway_is_read(public: bool, encoding: str) -> None:
    data = json.dumps({"message": "pong"}).encode()
    if encoding == "gzip":
        body = gzip.compress(data)
    elif encoding == "deflate":
        body = zlib.compress(data)
    elif encoding == "raw-deflate":
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body, encoding = packer.compress(data) + packer.flush(), "deflate"
    else:
        body = data

    def handler(request: httpx.Request) -> httpx.Response:
        return streamed(200, body, **{"content-encoding": encoding})

    assert send(client_for(handler, public=public), PING).json == {"message": "pong"}


def test_an_oversized_error_answer_keeps_its_status_and_retry() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            headers = {"content-length": str(MAX_ANSWER_BYTES + 1), "retry-after": "1"}
            return httpx.Response(503, headers=headers, stream=Drip(b"x", 1))
        return httpx.Response(200, json={"message": "pong"})

    assert send(client_for(handler), PING).json == {"message": "pong"}
    assert len(calls) == 2

    def always(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"content-length": str(MAX_ANSWER_BYTES + 1)})

    error = fail(client_for(always, max_attempts=2), PING)
    assert (error.code, error.status, error.retryable) == ("provider_error", 503, True)
    assert "unreadable answer" in error.message and "too large" in error.message


# --- broken encodings and bodies ----------------------------------------------------------------

BROKEN_GZIP = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xde\xad\xbe\xef" * 8
TRUNCATED_GZIP = gzipped(GENERATION)[:-12]


@PATHS
@pytest.mark.parametrize(
    ("body", "encoding", "words"),
    [
        (BROKEN_GZIP, "gzip", "broken gzip body"),
        (TRUNCATED_GZIP, "gzip", "truncated gzip body"),
        (b"\x00\x01\x02 not deflate", "deflate", "broken deflate body"),
        (b'{"id": "x"}', "br", "encoding that was not asked for ('br')"),
        (b"[" * 200_000 + b"]" * 200_000, "identity", "broken JSON body"),
        (b'{"id": "\xff\xfe"}', "identity", "broken JSON body"),
    ],
    ids=["broken-gzip", "truncated-gzip", "broken-deflate", "brotli", "deep-json", "bad-utf8"],
)
def test_an_unreadable_answer_is_retried_then_a_provider_error(
    public: bool, body: bytes, encoding: str, words: str
) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return streamed(200, body, **{"content-encoding": encoding})

    error = fail(client_for(handler, public=public, max_attempts=2), PING)
    assert len(calls) == 2
    assert (error.code, error.status, error.retryable) == ("provider_error", 200, True)
    assert words in error.message
    assert len(error.attempts) == 2


@pytest.mark.parametrize(
    "answer",
    [
        lambda: streamed(201, BROKEN_GZIP, **{"content-encoding": "gzip"}),
        lambda: streamed(201, TRUNCATED_GZIP, **{"content-encoding": "gzip"}),
        lambda: httpx.Response(
            201, headers={"content-length": str(MAX_ANSWER_BYTES + 1)}, stream=Drip(b"{", 1)
        ),
        lambda: httpx.Response(201, stream=Drip(b" " * 65536, 1000)),
    ],
    ids=["broken-gzip", "truncated-gzip", "declared-too-large", "streamed-too-large"],
)
def test_an_unreadable_create_answer_is_lost_found_and_never_sent_twice(
    answer: Callable[[], httpx.Response],
) -> None:
    posts: list[int] = []
    looked: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(1)
        return answer()

    async def find(client: ApiClient, request: ApiRequest, since: float) -> dict[str, Any]:
        looked.append(since)
        return GENERATION

    response = send(client_for(handler, find_created=find), CREATE)
    assert (len(posts), len(looked)) == (1, 1)
    assert response.json["id"] == GENERATION["id"]

    # With no way to look, it is not sent again: the outcome is unknown.
    posts.clear()
    error = fail(client_for(handler, find_created=None), CREATE)
    assert len(posts) == 1
    assert (error.code, error.retryable) == ("unknown_outcome", True)
    assert "may have been accepted" in error.message and "not sent again" in error.message


def test_a_runner_create_with_a_broken_gzip_answer_ends_in_an_error_not_a_hang() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return streamed(201, BROKEN_GZIP, **{"content-encoding": "gzip"})

    async def go() -> DreamError:
        runner = Runner(
            api_key=KEY,
            base_url=BASE,
            transport=httpx.MockTransport(handler),
            retry=RetryPolicy(max_attempts=1),
        )
        async with runner:
            with pytest.raises(DreamError) as caught:
                await runner.run("dream_machine", {"model": "ray-2", "prompt": "a tiger"})
        return caught.value

    error = asyncio.run(asyncio.wait_for(go(), 60))
    assert error.code in ("unknown_outcome", "provider_error")
    assert "broken gzip body" in error.message


# --- over a real socket -------------------------------------------------------------------------


async def _serve(payload: bytes, head: bytes) -> tuple[asyncio.Server, str]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head)
        try:
            for start in range(0, len(payload), 65536):
                writer.write(payload[start : start + 65536])
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1"


def _over_socket(payload: bytes, head: bytes) -> DreamError:
    async def go() -> DreamError:
        server, base = await _serve(payload, head)
        async with server:
            client = ApiClient(
                base_url=base,
                auth_headers={"Authorization": KEY},
                policy=RetryPolicy(max_attempts=1),
            )
            async with client:
                with pytest.raises(DreamError) as caught:
                    await client.send(PING)
            return caught.value

    return asyncio.run(asyncio.wait_for(go(), 60))


def test_over_a_socket_a_broken_gzip_and_an_endless_answer_are_errors() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
    error = _over_socket(BROKEN_GZIP, head % len(BROKEN_GZIP))
    assert error.code == "provider_error" and "broken gzip body" in error.message

    endless = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    error = _over_socket(b" " * (MAX_ANSWER_BYTES + 1_000_000), endless)
    assert error.code == "provider_error" and "too large to read" in error.message
