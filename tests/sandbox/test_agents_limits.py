"""The Agents face's two limits (RPM sliding window, concurrent unfinished jobs) with their
headers and 429 bodies, the anti-abuse 429 from the fault injector, and presigned output URLs
that expire (S3's 403) while every GET mints fresh ones."""

from __future__ import annotations

import time
from typing import Any

import httpx
import luma_agents
import pytest
from luma_agents import Luma

MakeSandbox = Any
H = {"Authorization": "Bearer luma-api-k"}


def test_rpm_limit_429_has_the_rate_limit_headers_and_body(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(render=False, agents_per_minute=3, agents_concurrent=100, time_scale=60)
    client = Luma(auth_token="luma-api-k", base_url=sandbox.luma_agents_url, max_retries=0)
    remaining = [
        int(
            client.generations.with_raw_response.create(prompt="a").headers["x-ratelimit-remaining"]
        )
        for _ in range(3)
    ]
    assert remaining == [2, 1, 0]
    with pytest.raises(luma_agents.RateLimitError) as caught:
        client.generations.create(prompt="one too many")
    refused = caught.value.response
    assert caught.value.body == {"detail": "Rate limit exceeded"}
    assert refused.headers["x-ratelimit-limit"] == "3"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert int(refused.headers["x-ratelimit-reset"]) >= int(time.time())
    assert int(refused.headers["retry-after"]) >= 1  # whole seconds, at least 1
    assert refused.headers["x-api-version"] == "2026-04-01"
    # other keys have their own window; GETs and Files calls are outside it
    other = httpx.post(
        sandbox.luma_agents_url + "/generations",
        json={"prompt": "a"},
        headers={"Authorization": "Bearer other"},
    )
    assert other.status_code == 201
    assert client.files.list().data == []
    time.sleep(1.05)  # the 60 s window is 1 s at time scale 60
    assert client.generations.create(prompt="again").state == "queued"


def test_concurrency_limit_429_has_only_retry_after(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(render=False, agents_per_minute=100, agents_concurrent=2)
    client = Luma(auth_token="luma-api-k", base_url=sandbox.luma_agents_url, max_retries=0)
    first = client.generations.create(prompt="a")
    client.generations.create(prompt="b")
    with pytest.raises(luma_agents.RateLimitError) as caught:
        client.generations.create(prompt="c")
    assert caught.value.body == {"detail": "Too many concurrent jobs"}
    headers = caught.value.response.headers
    assert headers["retry-after"] == "3"  # Luma's 60 s, at time scale 20
    assert not any(name.startswith("x-ratelimit") for name in headers)
    while client.generations.get(first.id).state != "completed":
        time.sleep(0.01)
    client.generations.create(prompt="c")  # a slot is free again


def test_limits_off_and_validation_errors_do_not_count(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(render=False, agents_per_minute=2)
    url = sandbox.luma_agents_url + "/generations"
    bad = [httpx.post(url, json={"prompt": ""}, headers=H).status_code for _ in range(3)]
    assert bad == [400, 400, 400]
    good = [httpx.post(url, json={"prompt": "a"}, headers=H).status_code for _ in range(3)]
    assert good == [201, 201, 429]
    free = make_sandbox(render=False, limits=False, agents_per_minute=1, agents_concurrent=1)
    url = free.luma_agents_url + "/generations"
    assert {httpx.post(url, json={"prompt": "a"}, headers=H).status_code for _ in range(4)} == {201}


def test_the_sdk_honours_retry_after_and_gets_through(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(render=False, agents_per_minute=1, time_scale=60)
    client = Luma(auth_token="luma-api-k", base_url=sandbox.luma_agents_url, max_retries=2)
    client.generations.create(prompt="a")
    started = time.monotonic()
    client.generations.create(prompt="b")  # 429, Retry-After: 1, then 201
    assert 0.9 <= time.monotonic() - started < 5
    statuses = [s for m, p, s in sandbox.request_log() if p.endswith("/generations")]
    assert statuses == [201, 429, 201]


def test_injected_429s_are_the_anti_abuse_ceiling(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(render=False, fault_rate_429=1.0)
    answer = httpx.get(sandbox.luma_agents_url + "/files", headers=H)
    assert answer.status_code == 429 and "retry-after" in answer.headers
    assert not any(name.startswith("x-ratelimit") for name in answer.headers)
    assert answer.headers["x-api-version"] == "2026-04-01" and answer.headers["x-request-id"]


def test_output_urls_expire_with_403_and_each_get_mints_fresh_ones(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(render=False, agents_url_ttl=0.3 * 20)  # 0.3 s at time scale 20
    client = Luma(auth_token="luma-api-k", base_url=sandbox.luma_agents_url, max_retries=0)
    gen = client.generations.create(prompt="a kite", output_format="png")
    while (got := client.generations.get(gen.id)).state != "completed":
        time.sleep(0.01)
    assert got.output is not None
    url = got.output[0].url
    fresh = httpx.get(url)
    assert fresh.status_code == 200 and fresh.headers["content-type"] == "image/png"
    assert fresh.content.startswith(b"\x89PNG")
    time.sleep(0.4)
    expired = httpx.get(url)
    assert (
        expired.status_code == 403 and b"<Message>Request has expired</Message>" in expired.content
    )
    again = client.generations.get(gen.id).output
    assert again is not None and again[0].url != url
    assert httpx.get(again[0].url).status_code == 200
    forged = httpx.get(again[0].url.replace("/0.png", "/1.png"))
    assert forged.status_code == 403 and b"SignatureDoesNotMatch" in forged.content
    ranged = httpx.get(again[0].url, headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == b"\x89PNG"
