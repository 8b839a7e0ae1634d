"""Options a host puts in a dropdown: live from a list node, the schema's list as fallback."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from dreamnodes.execution.live_options import live_options
from dreamnodes.execution.runner import Runner

BASE = "http://luma.test/dream-machine/v1"


def options(handler: Any, node: str, field: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with Runner(
            api_key="k",
            base_url=BASE,
            transport=httpx.MockTransport(handler),
            retry={"max_attempts": 1},
        ) as runner:
            return await live_options(runner, node, field)

    return asyncio.run(go())


def test_concepts_come_live_from_list_concepts() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/generations/concepts/list")
        return httpx.Response(200, json=["dolly_zoom", "bolt_cam"])

    out = options(handler, "dream_machine", "concepts")
    assert out == {
        "source": "live",
        "options": [
            {"value": "dolly_zoom", "title": "Dolly Zoom"},
            {"value": "bolt_cam", "title": "Bolt Cam"},
        ],
    }


def test_the_static_list_is_the_fallback_when_the_live_one_fails() -> None:
    out = options(
        lambda r: httpx.Response(401, json={"detail": "Invalid API key is provided"}),
        "dream_machine",
        "concepts",
    )
    assert out["source"] == "static"
    assert {"value": "dolly_zoom", "title": "Dolly Zoom"} in out["options"]
    assert out["live_error"]["code"] == "auth_failed"


def test_labelled_options_are_static_and_need_no_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    out = options(handler, "dream_machine", "model")
    assert out["options"][0] == {"value": "ray-2", "title": "Ray 2 (best)"}
