"""Dream Machine through the Pixazo gateway, end to end against the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from dreamnodes.errors import DreamError
from dreamnodes.preparation.prepare import estimate
from dreamnodes.sandbox import Sandbox

from .helpers import run_node


def test_ray_2_flash_image_to_video_completes_with_a_video(
    sb: Sandbox, image: dict[str, Any]
) -> None:
    output = run_node(
        sb,
        "dream_machine",
        {
            "model": "Ray 2 Flash",
            "prompt": "The square starts to spin",
            "start_image_url": image["assets"]["image"],
        },
        wait="poll",
        provider="pixazo",
    )
    assert output["state"] == "completed"
    assert output["provider"] == "pixazo"
    assert output["assets"]["video"]
    job = next(j for j in sb.pixazo_requests() if j["request_id"] == output["id"])
    assert job["input"]["image_url"] == image["assets"]["image"]
    # its status, handed to the trigger, is the same output Get Generation gives
    status = {k: v for k, v in job.items() if k != "input"}
    assert run_node(sb, "generation_updated", {"payload": status}) == run_node(
        sb, "get_generation", {"generation_id": output["id"]}, provider="pixazo"
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"model": "ray-flash-2", "prompt": "A spinning square"}, "start_image_url"),
        (
            {
                "model": "ray-flash-2",
                "prompt": "A spin",
                "start_image_url": "https://example.com/a.jpg",
                "concepts": ["dolly_zoom"],
            },
            "concepts",
        ),
        (
            {"model": "ray-2", "prompt": "A spin", "start_image_url": "https://example.com/a.jpg"},
            "model",
        ),
    ],
)
def test_what_pixazo_lacks_is_an_input_error_naming_the_field(
    sb: Sandbox, params: dict[str, Any], field: str
) -> None:
    before = sb.request_log()
    with pytest.raises(DreamError) as caught:
        run_node(sb, "dream_machine", params, provider="pixazo")
    assert (caught.value.code, caught.value.field) == ("invalid_input", field)
    assert sb.request_log() == before


def test_pixazo_estimate_is_four_cents_a_second() -> None:
    params = {
        "model": "ray-flash-2",
        "prompt": "A spin",
        "start_image_url": "https://example.com/a.jpg",
    }
    assert estimate("dream_machine", {**params, "duration": "5s"}, provider="pixazo")[
        "estimate_usd"
    ] == pytest.approx(0.20)
    assert estimate("dream_machine", {**params, "duration": "9s"}, provider="pixazo")[
        "estimate_usd"
    ] == pytest.approx(0.36)


def test_image_estimates_per_model() -> None:
    assert estimate("generate_image", {"model": "photon-1", "prompt": "A cat"})[
        "estimate_usd"
    ] == pytest.approx(0.015)
    assert estimate("generate_image", {"model": "Photon Flash 1", "prompt": "A cat"})[
        "estimate_usd"
    ] == pytest.approx(0.004)
