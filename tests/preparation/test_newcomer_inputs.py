"""Issue 10 from Python: the same fields mean the same as on the command line."""

from __future__ import annotations

import math
from typing import Any

import pytest

from dreamnodes.errors import DreamError
from dreamnodes.preparation.prepare import estimate, prepare, with_options

FOX = {"prompt": "A fox in snow"}
GEN = "7ca76429-99d1-46ab-bb2e-84baa4acdb04"


@pytest.mark.parametrize("timeout", [0, -5, math.nan, math.inf, 10**9])
def test_run_option_timeout_is_checked(timeout: float) -> None:
    with pytest.raises(DreamError) as caught:
        with_options(prepare("dream_machine", FOX), timeout=timeout)
    assert caught.value.code == "invalid_input" and caught.value.field == "timeout"


def test_node_wait_field_is_the_run_option_unless_overridden() -> None:
    prepared = prepare("dream_machine", {**FOX, "wait": "Poll until done"})
    assert prepared.wait == "poll"
    assert with_options(prepared).wait == "poll"
    assert with_options(prepared, wait="none").wait == "none"


def test_required_default_filled_optional_left_to_the_api() -> None:
    params = prepare("dream_machine", FOX).params
    assert params["model"] == "ray-2" and "resolution" not in params


def test_every_field_error_at_once() -> None:
    with pytest.raises(DreamError) as caught:
        prepare("dream_machine", {"prompt": 1, "loop": "perhaps", "duration": "7s"})
    error = caught.value
    assert error.errors[0].field == error.field
    assert {e.field for e in error.errors} == {"prompt", "loop", "duration"}
    assert error.to_dict()["errors"][0] == {
        "field": error.field,
        "message": error.errors[0].message,
    }


@pytest.mark.parametrize(
    ("field", "given", "value"),
    [
        ("model", "RAY-FLASH-2", "ray-flash-2"),
        ("model", "ray 2 flash", "ray-flash-2"),
        ("model", "Ray 1.6", "ray-1-6"),
        ("aspect_ratio", "portrait", "9:16"),
        ("aspect_ratio", "16 : 9", "16:9"),
        ("duration", 9.0, "9s"),
        ("resolution", "4K", "4k"),
        ("loop", "yes", True),
    ],
)
def test_spellings(field: str, given: Any, value: Any) -> None:
    assert prepare("dream_machine", {**FOX, field: given}).params[field] == value


def test_ambiguous_spelling_names_candidates() -> None:
    with pytest.raises(DreamError) as caught:
        prepare("modify_video", {"video_url": "https://e.com/v.mp4", "mode": "adhere"})
    message = caught.value.message
    assert "ambiguous" in message and all(f"Adhere {n}" in message for n in (1, 2, 3))


def test_video_field_takes_a_generation_id_or_url_where_the_api_can() -> None:
    made = {"id": GEN, "state": "completed", "assets": {"video": "https://e.com/v.mp4"}}
    assert prepare("upscale_video", {"video": GEN}).params["generation_id"] == GEN
    assert prepare("upscale_video", {"video": made}).params["generation_id"] == GEN
    assert prepare("modify_video", {"video": made}).params["video_url"] == "https://e.com/v.mp4"
    assert prepare("reframe_video", {"video": "https://e.com/v.mp4", "aspect_ratio": "1:1"})
    with pytest.raises(DreamError) as caught:
        prepare("modify_video", {"video": GEN})
    assert caught.value.field == "video" and "URL" in caught.value.message
    with pytest.raises(DreamError) as caught:
        prepare("add_audio", {"video": GEN, "generation_id": GEN})
    assert "not both" in caught.value.message


def test_price_note_describes_the_estimate() -> None:
    found = estimate("dream_machine", {**FOX, "model": "Ray 2 Flash", "resolution": "4K"})
    assert found["estimate_note"].startswith("for model ray-flash-2, resolution 4k, duration 5s:")
