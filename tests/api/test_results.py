"""Provider answers normalised onto the one Generation shape."""

from __future__ import annotations

from typing import Any

import pytest

from dreamnodes.api.answers import generation, pixazo_status
from dreamnodes.catalog.pricing import estimate_usd
from dreamnodes.errors import DreamError


def test_an_old_answer_with_version_and_no_model_still_names_the_model() -> None:
    out = generation(
        {
            "id": "g",
            "state": "completed",
            "version": "v1.6",
            "assets": {"video": "https://x/v.mp4"},
            "request": {"prompt": "p"},
        }
    )
    assert out["model"] == "ray-1-6"
    assert out["assets"] == {"video": "https://x/v.mp4", "image": None, "progress_video": None}
    assert out["provider"] == "luma"


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("QUEUED", "queued"),
        ("PROCESSING", "dreaming"),
        ("COMPLETED", "completed"),
        ("FAILED", "failed"),
        ("ERROR", "failed"),
    ],
)
def test_pixazo_statuses_map_onto_luma_states(status: str, state: str) -> None:
    raw = {
        "request_id": "luma-x_1",
        "status": status,
        "error": None,
        "output": {"media_url": ["https://cdn/x.mp4"], "media_type": "video/mp4"},
    }
    out = pixazo_status(raw)
    assert (out["id"], out["state"], out["provider"]) == ("luma-x_1", state, "pixazo")
    assert out["assets"]["video"] == "https://cdn/x.mp4"
    assert (out["failure_reason"] is not None) == (state == "failed")


def test_an_answer_that_is_not_a_generation_is_a_provider_error() -> None:
    with pytest.raises(DreamError) as caught:
        generation(["not", "a", "generation"])
    assert caught.value.code == "provider_error"


def test_prices_scale_with_resolution_and_duration() -> None:
    price = {"by": "model", "table": {"ray-2": 0.57}, "factors": {"duration": {"5s": 1, "9s": 1.8}}}
    assert estimate_usd(price, {"model": "ray-2", "duration": "9s"}) == pytest.approx(1.026)
    assert estimate_usd(price, {"model": "ray-9"}) is None
    assert estimate_usd(
        {"base": 0.04, "per_second_of": "duration"}, {"duration": "9s"}
    ) == pytest.approx(0.36)


@pytest.mark.parametrize(
    ("media", "video"),
    [
        (["https://cdn/x.mp4", "https://cdn/y.mp4"], "https://cdn/x.mp4"),
        ("https://cdn/x.mp4", "https://cdn/x.mp4"),  # a single URL, not its first character
        ([], None),
        (None, None),
        ("", None),
    ],
)
def test_pixazo_media_url_as_a_list_or_a_single_url(media: Any, video: str | None) -> None:
    raw = {"request_id": "r1", "status": "COMPLETED", "output": {"media_url": media}}
    assert pixazo_status(raw)["assets"]["video"] == video


@pytest.mark.parametrize("media", [{"a": 1}, 7, [7], ["https://cdn/x.mp4", None]])
def test_a_pixazo_media_url_of_another_shape_is_a_provider_error(media: Any) -> None:
    raw = {"request_id": "r1", "status": "COMPLETED", "output": {"media_url": media}}
    with pytest.raises(DreamError) as caught:
        pixazo_status(raw)
    assert caught.value.code == "provider_error"
    assert "media_url" in caught.value.message
