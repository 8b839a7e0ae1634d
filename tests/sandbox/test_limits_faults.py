"""Account limits (429 + Retry-After) and the seeded fault kinds."""

from __future__ import annotations

from typing import Any

import httpx
import lumaai
import pytest
from lumaai import LumaAI

H = {"Authorization": "Bearer k"}
VIDEO = {"model": "ray-2", "prompt": "a tiger walking"}


def test_concurrency_limit_answers_429_with_retry_after(make_sandbox: Any, done: Any) -> None:
    sandbox = make_sandbox(video_concurrent=2, video_per_minute=100)
    client = LumaAI(auth_token="k", base_url=sandbox.luma_url, max_retries=0)
    first = client.generations.create(**VIDEO)
    client.generations.create(**VIDEO)
    with pytest.raises(lumaai.RateLimitError) as caught:
        client.generations.create(**VIDEO)
    headers = caught.value.response.headers
    assert 0 < float(headers["retry-after"]) <= 0.2  # (0.5 + 2.0) s / time_scale 20
    assert int(headers["retry-after-ms"]) > 0
    assert "concurrent" in caught.value.body["detail"]
    # images have their own family
    client.generations.image.create(prompt="a cat", model="photon-1")
    done(client, first.id)
    client.generations.create(**VIDEO)  # a slot is free again


def test_per_minute_window_and_refusals_do_not_count(make_sandbox: Any) -> None:
    sandbox = make_sandbox(time_scale=60.0, video_per_minute=3, video_concurrent=100)
    url = sandbox.luma_url + "/generations"
    statuses = [httpx.post(url, json=VIDEO, headers=H).status_code for _ in range(5)]
    assert statuses == [201, 201, 201, 429, 429]
    refused = httpx.post(url, json=VIDEO, headers=H)
    assert 0 < float(refused.headers["retry-after"]) <= 1.0  # 60 s window / 60
    import time

    time.sleep(float(refused.headers["retry-after"]) + 0.05)
    assert httpx.post(url, json=VIDEO, headers=H).status_code == 201


def test_limits_can_be_turned_off(make_sandbox: Any) -> None:
    sandbox = make_sandbox(limits=False, video_concurrent=1, video_per_minute=1)
    url = sandbox.luma_url + "/generations"
    assert {httpx.post(url, json=VIDEO, headers=H).status_code for _ in range(4)} == {201}


def _statuses(sandbox: Any, n: int, method: str = "POST") -> list[Any]:
    out = []
    with httpx.Client(headers=H, timeout=5) as http:
        for _ in range(n):
            try:
                if method == "POST":
                    answer = http.post(sandbox.luma_url + "/generations", json=VIDEO)
                else:
                    answer = http.get(sandbox.luma_url + "/credits")
                out.append(answer.status_code)
            except httpx.TransportError as exc:
                out.append(type(exc).__name__)
    return out


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("fault_rate_429", {429}),
        ("fault_rate_5xx", {500, 503}),
        ("fault_rate_drop_before", {"RemoteProtocolError"}),
        ("fault_rate_truncated", {"RemoteProtocolError"}),
    ],
)
def test_each_fault_kind_alone(make_sandbox: Any, setting: str, expected: set[Any]) -> None:
    sandbox = make_sandbox(limits=False, **{setting: 1.0})
    assert set(_statuses(sandbox, 6, "GET")) == expected
    if setting == "fault_rate_drop_before":
        assert sandbox.request_log()[-1][2] == "dropped"


def test_fault_429_carries_retry_after(make_sandbox: Any) -> None:
    sandbox = make_sandbox(fault_rate_429=1.0)
    answer = httpx.get(sandbox.luma_url + "/credits", headers=H)
    assert answer.status_code == 429 and float(answer.headers["retry-after"]) == 0.05


def test_drop_after_creates_the_generation_but_loses_the_answer(make_sandbox: Any) -> None:
    sandbox = make_sandbox(limits=False, fault_rate_drop_after=1.0)
    assert _statuses(sandbox, 1) == ["RemoteProtocolError"]
    assert len(sandbox.generations()) == 1
    assert _statuses(sandbox, 2, "GET") == [200, 200]  # reads are never drop_after


def test_truncated_create_still_creates(make_sandbox: Any) -> None:
    sandbox = make_sandbox(limits=False, fault_rate_truncated=1.0)
    assert _statuses(sandbox, 2) == ["RemoteProtocolError"] * 2
    assert len(sandbox.generations()) == 2


def test_slow_answers_arrive_late(make_sandbox: Any) -> None:
    import time

    sandbox = make_sandbox(fault_rate_slow=1.0, slow_seconds=4.0)  # 4 s / 20 = 0.2 s
    start = time.monotonic()
    assert _statuses(sandbox, 1, "GET") == [200]
    assert time.monotonic() - start >= 0.2


def test_faults_are_reproducible_with_a_seed(make_sandbox: Any) -> None:
    rates = {"fault_rate_429": 0.2, "fault_rate_5xx": 0.2, "limits": False}
    a = _statuses(make_sandbox(fault_seed=7, **rates), 30, "GET")
    b = _statuses(make_sandbox(fault_seed=7, **rates), 30, "GET")
    c = _statuses(make_sandbox(fault_seed=8, **rates), 30, "GET")
    assert a == b and a != c
    assert 200 in a and 429 in a
