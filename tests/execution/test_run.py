"""One node run end to end over a mock transport: waiting, failures, provider checks."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from dreamnodes.errors import DreamError
from dreamnodes.execution.runner import Runner
from dreamnodes.preparation.prepare import estimate

BASE = "http://luma.test/dream-machine/v1"


class FakeLuma:
    """Creates a generation and walks it through the given states, one per GET."""

    def __init__(self, states: list[str], failure: str | None = None, get_errors: int = 0) -> None:
        self.states = states
        self.failure = failure
        self.get_errors = get_errors
        self.requests: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if request.method == "POST":
            return httpx.Response(201, json=self.generation("queued"))
        if self.get_errors:
            self.get_errors -= 1
            return httpx.Response(503, json={"detail": "busy"})
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return httpx.Response(200, json=self.generation(state))

    def generation(self, state: str) -> dict[str, Any]:
        done = state == "completed"
        return {
            "id": "g-1",
            "state": state,
            "model": "ray-2",
            "generation_type": "video",
            "created_at": "2026-01-01T00:00:00Z",
            "failure_reason": self.failure if state == "failed" else None,
            "assets": {"video": "https://cdn.test/g-1.mp4"} if done else None,
            "request": {"model": "ray-2", "prompt": "A tiger walking in snow"},
        }


async def no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def run(fake: FakeLuma, **options: Any) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with Runner(
            api_key="k",
            base_url=BASE,
            transport=httpx.MockTransport(fake),
            sleep=no_sleep,
            retry={"max_attempts": 2, "first_delay": 0},
        ) as runner:
            return await runner.run(
                "dream_machine", {"model": "ray-2", "prompt": "A tiger walking in snow"}, **options
            )

    return asyncio.run(go())


def test_without_waiting_the_create_answer_is_returned_queued() -> None:
    fake = FakeLuma(["completed"])
    out = run(fake)
    assert out["state"] == "queued" and out["id"] == "g-1"
    assert fake.requests == [("POST", "/dream-machine/v1/generations/video")]


def test_waiting_polls_until_completed() -> None:
    fake = FakeLuma(["queued", "dreaming", "dreaming", "completed"])
    out = run(fake, wait="poll")
    assert out["state"] == "completed"
    assert out["assets"]["video"] == "https://cdn.test/g-1.mp4"
    assert len(fake.requests) == 5


def test_polls_failing_for_a_while_do_not_use_up_the_retry_budget() -> None:
    # Two attempts per request, four 503s in a row: two polls fail, the wait goes on.
    fake = FakeLuma(["dreaming", "completed"], get_errors=4)
    assert run(fake, wait="poll")["state"] == "completed"


def test_a_failed_generation_is_generation_failed_with_its_reason() -> None:
    fake = FakeLuma(["dreaming", "failed"], failure="Contains blacklisted words")
    with pytest.raises(DreamError) as caught:
        run(fake, wait="poll")
    error = caught.value
    assert (error.code, error.generation_id, error.failure_reason) == (
        "generation_failed",
        "g-1",
        "Contains blacklisted words",
    )


def test_a_wait_timeout_carries_the_generation_id() -> None:
    fake = FakeLuma(["dreaming"])
    with pytest.raises(DreamError) as caught:
        run(fake, wait="poll", timeout=5)
    assert caught.value.code == "wait_timeout"
    assert caught.value.generation_id == "g-1"
    assert "g-1" in caught.value.message


def test_an_option_the_provider_lacks_is_an_input_error_naming_it() -> None:
    with pytest.raises(DreamError) as caught:
        estimate(
            "dream_machine",
            {
                "model": "ray-flash-2",
                "prompt": "A tiger",
                "start_image_url": "https://e.com/a.jpg",
                "concepts": ["dolly_zoom"],
            },
            provider="pixazo",
        )
    assert (caught.value.code, caught.value.field) == ("invalid_input", "concepts")


def test_pixazo_dry_run_shows_its_own_request_and_price() -> None:
    out = estimate(
        "dream_machine",
        {
            "model": "Ray 2 Flash",
            "prompt": "A tiger",
            "start_image_url": "https://e.com/a.jpg",
            "duration": "9s",
        },
        provider="pixazo",
    )
    assert out["request"]["url"].endswith("luma-dream-machine-ray-2-flash-image-to-video-request")
    assert out["request"]["body"] == {
        "prompt": "A tiger",
        "duration": "9s",
        "image_url": "https://e.com/a.jpg",
    }
    assert out["estimate_usd"] == pytest.approx(0.36)
    assert json.dumps(out)  # what --dry-run prints is plain JSON


def test_the_nodes_own_wait_field_makes_it_wait_and_is_not_sent() -> None:
    fake = FakeLuma(["dreaming", "completed"])

    async def go() -> dict[str, Any]:
        async with Runner(
            api_key="k", base_url=BASE, transport=httpx.MockTransport(fake), sleep=no_sleep
        ) as runner:
            params = {"model": "ray-2", "prompt": "A tiger", "wait": "Poll until done"}
            assert runner.prepare("dream_machine", params).request.json == {  # type: ignore[union-attr]
                "generation_type": "video",
                "model": "ray-2",
                "prompt": "A tiger",
            }
            return await runner.run("dream_machine", params)

    assert asyncio.run(go())["state"] == "completed"


def test_an_explicit_wait_overrides_the_field() -> None:
    fake = FakeLuma(["completed"])
    out = run(fake, wait="none")
    assert out["state"] == "queued"
