"""ApiClient against httpx.MockTransport: retries, Retry-After, error mapping, lost creates."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dreamnodes.api.client import ApiClient, ApiRequest, ApiResponse, FindCreated
from dreamnodes.api.lost_creates import claim, luma_find_created
from dreamnodes.api.retry import RetryPolicy
from dreamnodes.errors import DreamError

KEY = "sk-live-7f3c9a1b2d4e6f8091a2b3c4d5e6f708"
BASE = "https://api.test/dream-machine/v1"
NO_JITTER = RetryPolicy(jitter=False)
Handler = Callable[[httpx.Request], httpx.Response]


def make_client(
    handler: Handler,
    policy: RetryPolicy = NO_JITTER,
    find_created: FindCreated | None = None,
) -> tuple[ApiClient, list[float]]:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    client = ApiClient(
        base_url=BASE,
        auth_headers={"Authorization": f"Bearer {KEY}"},
        policy=policy,
        transport=httpx.MockTransport(handler),
        find_created=find_created,
        sleep=sleep,
    )
    return client, delays


def send(client: ApiClient, request: ApiRequest) -> ApiResponse:
    async def go() -> ApiResponse:
        async with client:
            return await client.send(request)

    return asyncio.run(go())


def fail(client: ApiClient, request: ApiRequest) -> DreamError:
    with pytest.raises(DreamError) as caught:
        send(client, request)
    return caught.value


def scripted(*steps: Any) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering each call with the next step (a Response or an exception to raise)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = steps[min(len(seen), len(steps)) - 1]
        if isinstance(step, Exception):
            raise step
        assert isinstance(step, httpx.Response)
        return step

    return handler, seen


PING = ApiRequest(method="GET", path="/ping")
OK = httpx.Response(200, json={"message": "pong"})


# --- plain calls ------------------------------------------------------------------------------


def test_auth_base_url_and_request_parts_are_sent() -> None:
    handler, seen = scripted(httpx.Response(200, json={"generations": []}))
    client, _ = make_client(handler)
    request = ApiRequest(
        method="GET",
        path="/generations",
        query={"limit": 5},
        headers={"X-Webhook-URL": "https://hook.test/x"},
    )
    response = send(client, request)
    assert response.status == 200
    assert response.json == {"generations": []}
    sent = seen[0]
    assert str(sent.url) == f"{BASE}/generations?limit=5"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["x-webhook-url"] == "https://hook.test/x"
    assert [a.status for a in client.attempts] == [200]


def test_a_passed_in_http_client_gets_the_auth_and_is_not_closed() -> None:
    handler, seen = scripted(OK)
    http = httpx.AsyncClient(base_url=BASE, transport=httpx.MockTransport(handler))

    async def go() -> None:
        async with ApiClient(base_url=BASE, auth_headers={"Authorization": KEY}, http=http) as c:
            await c.send(PING)
        assert not http.is_closed
        await http.aclose()

    asyncio.run(go())
    assert seen[0].headers["authorization"] == KEY


def test_empty_204_body_is_none() -> None:
    handler, _ = scripted(httpx.Response(204))
    client, _ = make_client(handler)
    response = send(client, ApiRequest(method="DELETE", path="/generations/abc"))
    assert (response.status, response.json) == (204, None)


# --- retries ------------------------------------------------------------------------------------


def test_429_with_retry_after_waits_exactly_that_even_with_jitter() -> None:
    handler, seen = scripted(
        httpx.Response(429, json={"detail": "Too many requests"}, headers={"Retry-After": "2.5"}),
        OK,
    )
    client, delays = make_client(handler, RetryPolicy(jitter=True))
    assert send(client, PING).json == {"message": "pong"}
    assert delays == [2.5]
    assert len(seen) == 2


def test_retry_after_ms_is_obeyed_and_long_waits_are_capped() -> None:
    handler, _ = scripted(
        httpx.Response(503, headers={"retry-after-ms": "1500"}),
        httpx.Response(429, headers={"Retry-After": "3600"}),
        OK,
    )
    client, delays = make_client(handler, RetryPolicy(retry_after_cap=20))
    send(client, PING)
    assert delays == [1.5, 20.0]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-2", "NaN"])
def test_a_retry_after_that_is_not_a_usable_number_gets_the_policys_backoff(value: str) -> None:
    handler, seen = scripted(
        httpx.Response(429, json={"detail": "slow down"}, headers={"Retry-After": value}),
        httpx.Response(503, headers={"Retry-After": value}),
        OK,
    )
    client, delays = make_client(handler)
    assert send(client, PING).json == {"message": "pong"}
    assert delays == [1.0, 2.0]  # not 0 (a hammering retry) and not forever
    assert len(seen) == 3


def test_5xx_then_success() -> None:
    handler, seen = scripted(
        httpx.Response(500, json={"detail": "Internal Server Error"}),
        httpx.Response(502, text="<html>bad gateway</html>"),
        httpx.Response(504),
        OK,
    )
    client, delays = make_client(handler)
    assert send(client, PING).status == 200
    assert delays == [1.0, 2.0, 4.0]
    assert [a.status for a in client.attempts] == [500, 502, 504, 200]
    assert len(seen) == 4


@pytest.mark.parametrize(
    "drop",
    [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadError("Connection reset by peer"),
        httpx.ReadTimeout("timed out"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_dropped_connections_are_retried(drop: Exception) -> None:
    handler, seen = scripted(drop, drop, OK)
    client, delays = make_client(handler)
    assert send(client, PING).json == {"message": "pong"}
    assert len(seen) == 3
    assert delays == [1.0, 2.0]
    assert [a.status for a in client.attempts] == [None, None, 200]
    assert client.attempts[0].error is not None
    assert type(drop).__name__ in client.attempts[0].error


@pytest.mark.parametrize("max_attempts", [1, 2, 3, 4, 5])
def test_a_server_always_answering_500_gets_exactly_max_attempts_requests(
    max_attempts: int,
) -> None:
    handler, seen = scripted(httpx.Response(500, json={"detail": "Internal Server Error"}))
    client, delays = make_client(handler, RetryPolicy(max_attempts=max_attempts, jitter=False))
    error = fail(client, PING)
    assert len(seen) == max_attempts
    assert len(delays) == max_attempts - 1
    assert (error.code, error.status, error.retryable) == ("provider_error", 500, True)
    assert len(error.attempts) == max_attempts
    noun = "attempt" if max_attempts == 1 else "attempts"
    assert f"after {max_attempts} {noun}" in error.message
    assert "Internal Server Error" in error.message


def test_backoff_delays_grow_and_are_capped() -> None:
    handler, _ = scripted(httpx.Response(503))
    policy = RetryPolicy(first_delay=1, multiplier=3, max_delay=5, jitter=False)
    client, delays = make_client(handler, policy)
    fail(client, PING)
    assert delays == [1, 3, 5, 5]


def test_jittered_delays_stay_between_half_and_all_of_each_step() -> None:
    handler, _ = scripted(httpx.Response(503))
    client, delays = make_client(handler, RetryPolicy(first_delay=1, multiplier=3, max_delay=5))
    fail(client, PING)
    assert len(delays) == 4
    for delay, full in zip(delays, [1, 3, 5, 5], strict=True):
        assert full / 2 <= delay <= full


@pytest.mark.parametrize(
    ("status", "body", "code", "words"),
    [
        (
            400,
            {"detail": "400: concepts are not supported for this model"},
            "invalid_input",
            "concepts are not supported",
        ),
        (
            422,
            {"detail": "Prompt is too short, minimum length is 3 characters"},
            "invalid_input",
            "Prompt is too short",
        ),
        (401, {"detail": "Invalid API key is provided"}, "auth_failed", "Invalid API key"),
        (403, {"detail": "Forbidden"}, "auth_failed", "Forbidden"),
        (
            402,
            {"error": "Insufficient Balance", "message": "Top up"},
            "insufficient_credits",
            "Insufficient Balance: Top up",
        ),
        (404, {"detail": "Generation not found"}, "not_found", "Generation not found"),
        (409, {"detail": "Conflict"}, "provider_error", "Conflict"),
    ],
)
def test_client_errors_are_not_retried_and_keep_the_providers_words(
    status: int, body: dict[str, str], code: str, words: str
) -> None:
    handler, seen = scripted(httpx.Response(status, json=body))
    client, delays = make_client(handler)
    error = fail(client, PING)
    assert len(seen) == 1
    assert delays == []
    assert (error.code, error.status, error.retryable) == (code, status, False)
    assert words in error.message
    assert "after 1 attempt" in error.message
    assert [a.status for a in error.attempts] == [status]


def test_fastapi_validation_detail_names_the_field() -> None:
    detail = [{"loc": ["body", "prompt"], "msg": "field required", "type": "missing"}]
    handler, _ = scripted(httpx.Response(422, json={"detail": detail}))
    client, _ = make_client(handler)
    error = fail(client, PING)
    assert (error.code, error.field) == ("invalid_input", "prompt")
    assert "field required" in error.message


def test_429_on_every_attempt_is_rate_limited() -> None:
    handler, seen = scripted(httpx.Response(429, json={"detail": "Rate limit exceeded"}))
    client, _ = make_client(handler, RetryPolicy(max_attempts=3, jitter=False))
    error = fail(client, PING)
    assert (error.code, error.status, error.retryable) == ("rate_limited", 429, True)
    assert len(seen) == 3


def test_408_and_timeouts_and_connection_failures_map_to_their_codes() -> None:
    two = RetryPolicy(max_attempts=2, jitter=False)
    cases: list[tuple[Any, str]] = [
        (httpx.Response(408), "provider_error"),
        (httpx.ReadTimeout("timed out"), "timeout"),
        (httpx.ConnectTimeout("timed out"), "timeout"),
        (httpx.ConnectError("refused"), "network_error"),
        (httpx.RemoteProtocolError("peer closed"), "network_error"),
    ]
    for step, code in cases:
        handler, seen = scripted(step)
        client, _ = make_client(handler, two)
        error = fail(client, PING)
        assert (error.code, error.retryable, len(seen)) == (code, True, 2), step


def test_a_broken_2xx_json_body_is_retried_then_a_provider_error() -> None:
    handler, seen = scripted(httpx.Response(200, content=b'{"message": "po'), OK)
    client, _ = make_client(handler)
    assert send(client, PING).json == {"message": "pong"}
    assert len(seen) == 2

    handler, seen = scripted(httpx.Response(200, content=b'{"message": "po'))
    client, _ = make_client(handler, RetryPolicy(max_attempts=2, jitter=False))
    error = fail(client, PING)
    assert (error.code, error.status, len(seen)) == ("provider_error", 200, 2)
    assert "broken JSON" in error.message


def test_send_once_does_not_retry() -> None:
    handler, seen = scripted(httpx.Response(500))
    client, _ = make_client(handler)

    async def go() -> None:
        async with client:
            await client.send_once(PING)

    with pytest.raises(DreamError) as caught:
        asyncio.run(go())
    assert len(seen) == 1
    assert caught.value.code == "provider_error"


# --- billable creates ---------------------------------------------------------------------------

DEFAULT_ECHO = {
    "generation_type": "video",
    "aspect_ratio": "16:9",
    "loop": False,
    "resolution": "720p",
    "duration": "5s",
    "keyframes": None,
    "concepts": None,
    "callback_url": None,
}


class FakeLuma:
    """A tiny Generation store: creates can be made to fail before or after being accepted."""

    def __init__(self, create_steps: list[str] | None = None, list_status: int = 200) -> None:
        self.generations: list[dict[str, Any]] = []
        self.create_steps = list(create_steps or [])  # "lose", "refuse", "truncate", "500", "ok"
        self.create_posts = 0
        self.list_calls = 0
        self.list_status = list_status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/dream-machine/v1")
        if request.method == "POST" and path == "/generations/video":
            return self._create(request)
        if request.method == "GET" and path == "/generations":
            self.list_calls += 1
            if self.list_status != 200:
                return httpx.Response(self.list_status, json={"detail": "list failed"})
            limit = int(request.url.params.get("limit", "100"))
            listed = self.generations[::-1][:limit]  # newest first
            return httpx.Response(200, json={"generations": listed, "count": len(listed)})
        return httpx.Response(404, json={"detail": "Not Found"})

    def _create(self, request: httpx.Request) -> httpx.Response:
        self.create_posts += 1
        step = self.create_steps.pop(0) if self.create_steps else "ok"
        if step == "refuse":  # connection reset before the service read the request
            raise httpx.ReadError("Connection reset by peer", request=request)
        if step == "connect":
            raise httpx.ConnectError("Connection refused", request=request)
        if step == "500":
            return httpx.Response(500, json={"detail": "Internal Server Error"})
        body = json.loads(request.content)
        generation = {
            "id": str(uuid.uuid4()),
            "generation_type": "video",
            "state": "queued",
            "failure_reason": None,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "assets": None,
            "model": body["model"],
            "request": {**DEFAULT_ECHO, **body},
        }
        self.generations.append(generation)
        if step == "lose":  # accepted, then the connection dropped before the answer
            raise httpx.ReadError("Connection reset by peer", request=request)
        if step == "truncate":
            return httpx.Response(201, content=json.dumps(generation).encode()[:40])
        return httpx.Response(201, json=generation)


def create(prompt: str | None = None) -> ApiRequest:
    body = {"model": "ray-2", "prompt": prompt or f"a tiger in snow {uuid.uuid4()}", "loop": False}
    return ApiRequest(method="POST", path="/generations/video", json=body, billable=True)


def test_a_lost_create_answer_is_found_not_sent_again() -> None:
    luma = FakeLuma(["lose"])
    client, _ = make_client(luma, find_created=luma_find_created)
    response = send(client, create())
    assert luma.create_posts == 1
    assert len(luma.generations) == 1
    assert response.status == 201
    assert response.json["id"] == luma.generations[0]["id"]
    assert luma.list_calls == 1


def test_a_truncated_create_answer_is_found_not_sent_again() -> None:
    luma = FakeLuma(["truncate"])
    client, _ = make_client(luma, find_created=luma_find_created)
    response = send(client, create())
    assert (luma.create_posts, len(luma.generations)) == (1, 1)
    assert response.json["id"] == luma.generations[0]["id"]


def test_a_lost_answer_on_the_last_attempt_is_still_looked_for() -> None:
    luma = FakeLuma(["500", "lose"])
    client, _ = make_client(luma, RetryPolicy(max_attempts=2), find_created=luma_find_created)
    response = send(client, create())
    assert (luma.create_posts, len(luma.generations)) == (2, 1)
    assert response.json["id"] == luma.generations[0]["id"]


def test_a_lost_create_that_was_never_accepted_is_sent_again() -> None:
    luma = FakeLuma(["refuse"])
    client, delays = make_client(luma, find_created=luma_find_created)
    response = send(client, create())
    assert luma.list_calls == 1
    assert luma.create_posts == 2
    assert len(luma.generations) == 1
    assert response.json["id"] == luma.generations[0]["id"]
    assert len(client.attempts) == 2
    assert delays == [1.0]


@pytest.mark.parametrize("step", ["500", "connect"])
def test_a_create_the_service_certainly_refused_is_retried_without_looking(step: str) -> None:
    luma = FakeLuma([step])
    client, _ = make_client(luma, find_created=luma_find_created)
    response = send(client, create())
    assert (luma.create_posts, luma.list_calls, len(luma.generations)) == (2, 0, 1)
    assert response.json["id"] == luma.generations[0]["id"]


def test_without_a_way_to_look_a_lost_create_is_not_sent_again() -> None:
    luma = FakeLuma(["lose"])
    client, _ = make_client(luma, find_created=None)
    error = fail(client, create())
    assert luma.create_posts == 1
    assert (error.code, error.retryable) == ("unknown_outcome", True)
    assert "may have been accepted" in error.message
    assert "not sent again" in error.message
    assert len(error.attempts) == 1


def test_when_the_list_cannot_be_read_nothing_is_sent_twice() -> None:
    luma = FakeLuma(["lose"], list_status=500)
    client, delays = make_client(luma, find_created=luma_find_created)
    error = fail(client, create())
    assert luma.create_posts == 1
    assert luma.list_calls == 5
    assert (error.code, error.retryable) == ("unknown_outcome", True)
    assert "not sent again" in error.message
    assert delays == [1.0, 0.5, 1.0, 2.0, 4.0]  # the create's backoff, then the list's retries


def test_two_identical_lost_creates_never_claim_the_same_generation() -> None:
    luma = FakeLuma(["lose", "lose"])
    client, _ = make_client(luma, find_created=luma_find_created)
    same = create("two tigers, one prompt")

    async def go() -> list[ApiResponse]:
        async with client:
            return list(await asyncio.gather(client.send(same), client.send(same)))

    first, second = asyncio.run(go())
    assert luma.create_posts == 2
    assert len(luma.generations) == 2
    assert {first.json["id"], second.json["id"]} == {g["id"] for g in luma.generations}


def test_a_lost_create_does_not_take_the_twin_that_answered() -> None:
    luma = FakeLuma(["ok", "refuse"])
    client, _ = make_client(luma, find_created=luma_find_created)
    same = create()
    first = send(client, same)
    client2, _ = make_client(luma, find_created=luma_find_created)
    second = send(client2, same)
    assert first.json["id"] != second.json["id"]
    assert luma.create_posts == 3
    assert len(luma.generations) == 2


# --- luma_find_created matching -----------------------------------------------------------------


def listing_client(generations: list[dict[str, Any]]) -> ApiClient:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["limit"] == "50"
        return httpx.Response(200, json={"generations": generations})

    client, _ = make_client(handler)
    return client


def generation(request: dict[str, Any], age: float, now: datetime) -> dict[str, Any]:
    created = (now - timedelta(seconds=age)).isoformat()
    return {"id": str(uuid.uuid4()), "created_at": created, "request": request}


def find(client: ApiClient, body: Mapping[str, Any], started_at: float) -> Any:
    request = ApiRequest(method="POST", path="/generations/video", json=body, billable=True)
    return asyncio.run(luma_find_created(client, request, started_at))


def test_find_created_matches_echo_with_extra_defaults_and_nested_keyframes() -> None:
    now = datetime.now(UTC)
    frame = {"type": "image", "url": f"https://img.test/{uuid.uuid4()}.jpg"}
    sent = {"model": "ray-2", "prompt": "p", "keyframes": {"frame0": frame}, "callback_url": None}
    echo = {
        **DEFAULT_ECHO,
        "model": "ray-2",
        "prompt": "p",
        "keyframes": {"frame0": frame, "frame1": None},
    }
    other = {**echo, "prompt": "q"}
    old = generation(echo, 400, now)
    newest = generation(echo, 1, now)
    older = generation(echo, 5, now)
    client = listing_client([generation(other, 0, now), newest, older, old])
    started = now.timestamp() - 10
    assert find(client, sent, started)["id"] == newest["id"]
    assert find(client, sent, started)["id"] == older["id"]  # the newest is claimed now
    assert find(client, sent, started) is None  # too old, even with clock skew allowed


def test_find_created_allows_two_minutes_of_clock_skew_and_skips_claimed_ids() -> None:
    now = datetime.now(UTC)
    sent = {"model": "ray-2", "prompt": "skew"}
    behind = generation(sent, 100, now)  # the server's clock runs 100 s behind ours
    taken = generation(sent, 0, now)
    claim(taken["id"])
    client = listing_client([taken, behind])
    assert find(client, sent, now.timestamp())["id"] == behind["id"]


def test_find_created_does_not_match_true_for_1() -> None:
    now = datetime.now(UTC)
    client = listing_client([generation({"model": "ray-2", "loop": 1}, 0, now)])
    assert find(client, {"model": "ray-2", "loop": True}, now.timestamp()) is None


# --- the key never leaks ------------------------------------------------------------------------


def echoing_key(status: int) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        leaked = request.headers["authorization"]
        return httpx.Response(status, json={"detail": f"bad key {leaked}", "error": leaked})

    return handler


def raising_with_key(exc_type: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type(f"failed talking with {request.headers['authorization']}")

    return handler


LEAK_CASES: list[tuple[str, Handler, ApiRequest, FindCreated | None]] = [
    *[(f"http-{s}", echoing_key(s), PING, None) for s in (400, 401, 402, 403, 404, 422, 429, 500)],
    *[
        (f"transport-{e.__name__}", raising_with_key(e), PING, None)
        for e in (
            httpx.ConnectError,
            httpx.ReadError,
            httpx.ReadTimeout,
            httpx.RemoteProtocolError,
            httpx.UnsupportedProtocol,
        )
    ],
    ("lost-create-no-lookup", raising_with_key(httpx.ReadError), create(), None),
    ("lost-create-list-fails", FakeLuma(["lose"], list_status=401), create(), luma_find_created),
]


@pytest.mark.parametrize(
    ("handler", "request_", "finder"),
    [case[1:] for case in LEAK_CASES],
    ids=[case[0] for case in LEAK_CASES],
)
def test_the_key_never_appears_in_errors_attempts_reprs_or_logs(
    handler: Handler,
    request_: ApiRequest,
    finder: FindCreated | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if isinstance(handler, FakeLuma):  # make the list endpoint echo the key in its error
        inner = handler

        def leaky(request: httpx.Request) -> httpx.Response:
            answer = inner(request)
            if answer.status_code == 401:
                return echoing_key(401)(request)
            return answer

        handler = leaky
    caplog.set_level(logging.DEBUG)
    client, _ = make_client(handler, RetryPolicy(max_attempts=2), find_created=finder)
    error = fail(client, request_)
    seen = [
        str(error),
        repr(error),
        error.message,
        json.dumps(error.to_dict()),
        repr(error.attempts),
        repr(client.attempts),
        repr(client),
        caplog.text,
    ]
    for text in seen:
        assert KEY not in text
    assert error.attempts


@pytest.mark.parametrize("echo", [str.lower, str.upper, str.swapcase], ids=lambda f: f.__name__)
def test_a_key_echoed_in_another_letter_case_is_scrubbed_too(
    echo: Callable[[str], str],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError(f"peer said: {echo(request.headers['authorization'])}")

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"detail": f"key {echo(KEY)} is not valid"})

    for h in (handler, answer):
        client, _ = make_client(h, RetryPolicy(max_attempts=1))
        error = fail(client, PING)
        shown = json.dumps(error.to_dict()) + repr(error.attempts)
        assert KEY.lower() not in shown.lower()
        assert "***" in error.message
