"""Bad input to each new node is an invalid_input naming the field, and nothing is sent."""

from __future__ import annotations

from typing import Any

import pytest

from dreamnodes.errors import DreamError
from dreamnodes.sandbox import Sandbox

from .helpers import run_node

GEN = "7ca76429-99d1-46ab-bb2e-84baa4acdb04"
IMG = "https://example.com/a.jpg"
VID = "https://example.com/a.mp4"
IMAGE_OK = {"model": "photon-1", "prompt": "A cat"}
REFRAME_OK = {"media_url": VID, "aspect_ratio": "9:16", "model": "ray-2"}

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("generate_image", {**IMAGE_OK, "model": "photon-2"}, "model"),
    ("generate_image", {**IMAGE_OK, "format": "gif"}, "format"),
    ("generate_image", {**IMAGE_OK, "aspect_ratio": "2:1"}, "aspect_ratio"),
    ("generate_image", {"model": "photon-1"}, "prompt"),
    ("generate_image", {**IMAGE_OK, "image_refs": [{"url": IMG}] * 5}, "image_refs"),
    (
        "generate_image",
        {**IMAGE_OK, "image_refs": [{"url": IMG, "weight": 1.5}]},
        "image_refs[0].weight",
    ),
    (
        "generate_image",
        {**IMAGE_OK, "image_refs": [{"url": "file:///etc/passwd"}]},
        "image_refs[0].url",
    ),
    ("generate_image", {**IMAGE_OK, "character_images": [IMG] * 5}, "character_images"),
    ("generate_image", {**IMAGE_OK, "style_ref": IMG}, "style_ref"),
    ("generate_image", {**IMAGE_OK, "modify_image_weight": 0.5}, "modify_image_weight"),
    ("generate_image", {**IMAGE_OK, "sync": "maybe"}, "sync"),
    ("generate_image", {**IMAGE_OK, "callback_url": "not a url"}, "callback_url"),
    ("upscale_video", {"generation_id": "../credits"}, "generation_id"),
    ("upscale_video", {"generation_id": GEN, "resolution": "720p"}, "resolution"),
    ("upscale_video", {"resolution": "4k"}, "video"),
    ("add_audio", {"generation_id": "a/b"}, "generation_id"),
    ("add_audio", {"generation_id": GEN, "prompt": 42}, "prompt"),
    ("add_audio", {"generation_id": GEN, "negative_prompt": ["music"]}, "negative_prompt"),
    ("modify_video", {"video_url": VID, "mode": "adhere_4", "model": "ray-2"}, "mode"),
    ("modify_video", {"video_url": VID, "mode": "flex_1", "model": "ray-1-6"}, "model"),
    (
        "modify_video",
        {"video_url": "ftp://x/a.mp4", "mode": "flex_1", "model": "ray-2"},
        "video_url",
    ),
    (
        "modify_video",
        {
            "video_url": VID,
            "mode": "flex_1",
            "model": "ray-2",
            "first_frame_url": "data:image/png;base64,AA",
        },
        "first_frame_url",
    ),
    ("reframe_video", {**REFRAME_OK, "aspect_ratio": "5:4"}, "aspect_ratio"),
    ("reframe_video", {**REFRAME_OK, "x_start": 10}, "x_end"),
    ("reframe_video", {**REFRAME_OK, "resized_height": 100}, "resized_width"),
    (
        "reframe_video",
        {**REFRAME_OK, "grid_position_x": -1, "grid_position_y": 0},
        "grid_position_x",
    ),
    ("reframe_video", {**REFRAME_OK, "y_start": 1.5, "y_end": 3}, "y_start"),
    ("reframe_video", {"aspect_ratio": "9:16", "model": "ray-2"}, "video"),
    ("reframe_image", {"media_url": IMG, "aspect_ratio": "1:1", "model": "ray-2"}, "model"),
    (
        "reframe_image",
        {"media_url": IMG, "aspect_ratio": "1:1", "model": "photon-1", "format": "webp"},
        "format",
    ),
    (
        "reframe_image",
        {"media_url": IMG, "aspect_ratio": "1:1", "model": "photon-1", "first_frame_url": IMG},
        "first_frame_url",
    ),
    ("list_concepts", {"limit": 3}, "limit"),
    ("list_camera_motions", {"x": 1}, "x"),
    ("get_credits", {"generation_id": GEN}, "generation_id"),
    ("download_asset", {"url": "file:///etc/passwd"}, "url"),
    ("download_asset", {"url": VID, "filename": "../escape.mp4"}, "filename"),
    ("download_asset", {"url": VID, "filename": "sub/dir.mp4"}, "filename"),
    ("download_asset", {"url": VID, "max_mb": "lots"}, "max_mb"),
    ("generation_updated", {}, "payload"),
    ("generation_updated", {"payload": "just text"}, "payload"),
]


@pytest.mark.parametrize(
    ("node", "params", "field"), CASES, ids=[f"{n}-{f}-{i}" for i, (n, _, f) in enumerate(CASES)]
)
def test_bad_input_names_the_field_and_sends_nothing(
    sb: Sandbox, node: str, params: dict[str, Any], field: str
) -> None:
    before = sb.request_log()
    with pytest.raises(DreamError) as caught:
        run_node(
            sb,
            node,
            params,
            wait="poll" if node not in ("download_asset", "generation_updated") else "none",
        )
    assert caught.value.code == "invalid_input", caught.value.message
    assert caught.value.field == field, caught.value.message
    assert caught.value.message.startswith(field)
    assert sb.request_log() == before
