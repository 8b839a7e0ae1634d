"""Auth, validation and not-found answers, as the SDK's typed errors and as raw JSON."""

from __future__ import annotations

from typing import Any

import httpx
import lumaai
import pytest
from lumaai import LumaAI

from dreamnodes.sandbox import Sandbox


def test_missing_or_wrong_key_is_401(make_sandbox: Any) -> None:
    sandbox = make_sandbox(api_key="right-key")
    wrong = LumaAI(auth_token="wrong-key", base_url=sandbox.luma_url, max_retries=0)
    with pytest.raises(lumaai.AuthenticationError) as caught:
        wrong.ping.check()
    assert caught.value.body == {"detail": "Invalid API key is provided"}
    assert httpx.get(sandbox.luma_url + "/ping").status_code == 401
    right = LumaAI(auth_token="right-key", base_url=sandbox.luma_url, max_retries=0)
    assert right.ping.check().message == "pong"


def test_any_non_empty_key_is_accepted_by_default(sandbox: Sandbox) -> None:
    answer = httpx.get(sandbox.luma_url + "/ping", headers={"Authorization": "Bearer x"})
    assert answer.status_code == 200
    empty = httpx.get(sandbox.luma_url + "/ping", headers={"Authorization": "Basic abc"})
    assert empty.status_code == 401


def _post(sandbox: Sandbox, body: dict[str, Any], path: str = "/generations") -> httpx.Response:
    return httpx.post(sandbox.luma_url + path, json=body, headers={"Authorization": "Bearer k"})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "ray-2"}, "Prompt is required"),
        ({"model": "ray-2", "prompt": "ab"}, "Prompt is too short, minimum length is 3 characters"),
        (
            {"model": "ray-2", "prompt": "a" * 5001},
            "Prompt is too long, maximum length is 5000 characters",
        ),
        (
            {
                "model": "ray-2",
                "prompt": "a tiger",
                "loop": True,
                "keyframes": {"frame1": {"type": "image", "url": "https://x/y.jpg"}},
            },
            "Loop is not supported for end frame",
        ),
        ({"model": "ray-2", "prompt": "a tiger", "keyframes": {}}, "No keyframes provided"),
        (
            {"model": "ray-2", "prompt": "a tiger", "generation_type": "audio"},
            "Unknown request type",
        ),
        (
            {"model": "ray-1-6", "prompt": "a tiger", "concepts": [{"key": "dolly_zoom"}]},
            "400: concepts are not supported for this model",
        ),
    ],
)
def test_documented_messages(sandbox: Sandbox, body: dict[str, Any], message: str) -> None:
    answer = _post(sandbox, body)
    assert answer.status_code == 400
    assert answer.json() == {"detail": message}


@pytest.mark.parametrize(
    "body",
    [
        {"model": "ray-9", "prompt": "a tiger"},
        {"model": "ray-2", "prompt": "a tiger", "aspect_ratio": "5:4"},
        {"model": "ray-2", "prompt": "a tiger", "duration": "7s"},
        {"model": "ray-2", "prompt": "a tiger", "concepts": [{"key": "no_such"}]},
        {"model": "ray-2", "prompt": "a tiger", "keyframes": {"frame0": {"type": "video"}}},
        {"model": "ray-2", "prompt": "a tiger", "keyframes": {"frame0": {"type": "image"}}},
        {
            "model": "ray-2",
            "prompt": "a tiger",
            "keyframes": {"frame0": {"type": "generation", "id": "nope"}},
        },
    ],
)
def test_bad_values_are_400_through_the_sdk(client: LumaAI, body: dict[str, Any]) -> None:
    with pytest.raises(lumaai.BadRequestError):
        client.post("/generations/video", body=body, cast_to=object)


def test_loop_refusals_for_extend_and_interpolate(client: LumaAI, done: Any) -> None:
    source = client.generations.create(prompt="a river", model="ray-2")
    with pytest.raises(lumaai.BadRequestError, match="completed"):
        client.generations.create(
            prompt="more",
            model="ray-2",
            keyframes={"frame0": {"type": "generation", "id": source.id}},
        )
    done(client, source.id)
    ref = {"type": "generation", "id": source.id}
    with pytest.raises(lumaai.BadRequestError, match="extend reverse"):
        client.generations.create(
            prompt="x y z", model="ray-2", loop=True, keyframes={"frame1": ref}
        )
    with pytest.raises(lumaai.BadRequestError, match="interpolate"):
        client.generations.create(
            prompt="x y z", model="ray-2", loop=True, keyframes={"frame0": ref, "frame1": ref}
        )
    assert len(client.generations.list().generations) == 1  # nothing was queued


def test_unknown_generation_and_route_are_404(client: LumaAI, sandbox: Sandbox) -> None:
    with pytest.raises(lumaai.NotFoundError):
        client.generations.get("0b7c5f4e-0000-0000-0000-000000000000")
    with pytest.raises(lumaai.NotFoundError):
        client.generations.delete("0b7c5f4e-0000-0000-0000-000000000000")
    with pytest.raises(lumaai.NotFoundError):
        client.generations.upscale("0b7c5f4e-0000-0000-0000-000000000000")
    answer = httpx.get(sandbox.luma_url + "/nothing/here", headers={"Authorization": "Bearer k"})
    assert answer.status_code == 404 and answer.json() == {"detail": "Not Found"}
