"""The new create nodes run against the sandbox, wait, and give a Generation the SDK reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from lumaai.types import Generation
from PIL import Image

from dreamnodes.catalog.package import load_package
from dreamnodes.sandbox import Sandbox

from .helpers import raw_generation, run_node


def check_output(sb: Sandbox, output: dict[str, Any], request_type: str) -> Generation:
    """The output matches generation.json, and the sandbox's raw answer parses with the SDK."""
    pkg = load_package()
    Draft202012Validator(pkg.schema("generation.json"), registry=pkg.registry).validate(output)
    parsed = Generation.model_validate(raw_generation(sb, output["id"]))
    assert parsed.id == output["id"]
    assert parsed.state == output["state"]
    assert parsed.request is not None and parsed.request.generation_type == request_type
    return parsed


def test_generate_image_waits_and_downloads_a_real_jpeg(sb: Sandbox, tmp_path: Path) -> None:
    output = run_node(
        sb,
        "generate_image",
        {
            "model": "Photon 1",
            "prompt": "A lighthouse at dusk",
            "aspect_ratio": "1:1",
            "format": "JPEG",
        },
        wait="poll",
        download_dir=str(tmp_path),
    )
    assert output["state"] == "completed"
    assert output["assets"]["image"].endswith(".jpg")
    path = Path(output["files"]["image"])
    assert path.parent == tmp_path
    with Image.open(path) as picture:
        assert picture.format == "JPEG"
        assert picture.width == picture.height
    parsed = check_output(sb, output, "image")
    assert parsed.model == "photon-1"


def test_generate_image_png_with_every_reference(
    sb: Sandbox, image: dict[str, Any], tmp_path: Path
) -> None:
    ref = image["assets"]["image"]
    output = run_node(
        sb,
        "generate_image",
        {
            "model": "photon-flash-1",
            "prompt": "The same square, in red",
            "format": "png",
            "image_refs": [{"url": ref, "weight": 0.5}, {"url": ref}],
            "style_ref": {"url": ref, "weight": "0.3"},
            "character_images": [ref],
            "modify_image_url": ref,
            "modify_image_weight": 0.9,
        },
        wait="poll",
        download_dir=str(tmp_path),
    )
    with Image.open(output["files"]["image"]) as picture:
        assert picture.format == "PNG"
    sent = output["request"]
    assert sent["image_ref"] == [{"url": ref, "weight": 0.5}, {"url": ref, "weight": 0.85}]
    assert sent["style_ref"] == [{"url": ref, "weight": 0.3}]
    assert sent["character_ref"] == {"identity0": {"images": [ref]}}
    assert sent["modify_image_ref"] == {"url": ref, "weight": 0.9}
    check_output(sb, output, "image")


def test_generate_image_sync_answers_completed_without_polling(sb: Sandbox) -> None:
    output = run_node(
        sb, "generate_image", {"model": "photon-flash-1", "prompt": "Quick one", "sync": "Yes"}
    )
    assert output["state"] == "completed"
    assert output["assets"]["image"]


@pytest.mark.parametrize(
    ("node", "params", "request_type"),
    [
        ("upscale_video", {"resolution": "4K"}, "upscale_video"),
        ("add_audio", {"prompt": "Wind and birdsong", "negative_prompt": "music"}, "add_audio"),
    ],
)
def test_video_follow_ups_make_a_new_completed_video(
    sb: Sandbox, video: dict[str, Any], node: str, params: dict[str, Any], request_type: str
) -> None:
    output = run_node(sb, node, {"generation_id": video["id"], **params}, wait="poll")
    assert output["state"] == "completed"
    assert output["id"] != video["id"]
    assert output["assets"]["video"].endswith(".mp4")
    check_output(sb, output, request_type)


def test_modify_video_sends_media_and_first_frame(
    sb: Sandbox, video: dict[str, Any], image: dict[str, Any]
) -> None:
    output = run_node(
        sb,
        "modify_video",
        {
            "video_url": video["assets"]["video"],
            "mode": "Reimagine 2",
            "model": "Ray 2 Flash",
            "first_frame_url": image["assets"]["image"],
            "prompt": "Make it watercolor",
        },
        wait="poll",
    )
    assert output["state"] == "completed"
    assert output["request"]["media"] == {"url": video["assets"]["video"]}
    assert output["request"]["first_frame"] == {"url": image["assets"]["image"]}
    assert output["request"]["mode"] == "reimagine_2"
    check_output(sb, output, "modify_video")


def test_reframe_video_with_grid_and_crop(sb: Sandbox, video: dict[str, Any]) -> None:
    output = run_node(
        sb,
        "reframe_video",
        {
            "media_url": video["assets"]["video"],
            "aspect_ratio": "9:16",
            "model": "ray-2",
            "grid_position_x": 0,
            "grid_position_y": "120",
            "x_start": 10,
            "x_end": 500,
        },
        wait="poll",
    )
    assert output["state"] == "completed"
    assert output["assets"]["video"]
    sent = output["request"]
    assert (sent["grid_position_x"], sent["grid_position_y"], sent["x_start"], sent["x_end"]) == (
        0,
        120,
        10,
        500,
    )
    check_output(sb, output, "reframe_video")


def test_reframe_image_gives_an_image(sb: Sandbox, image: dict[str, Any], tmp_path: Path) -> None:
    output = run_node(
        sb,
        "reframe_image",
        {
            "media_url": image["assets"]["image"],
            "aspect_ratio": "16:9",
            "model": "photon-flash-1",
            "format": "png",
        },
        wait="poll",
        download_dir=str(tmp_path),
    )
    assert output["state"] == "completed"
    with Image.open(output["files"]["image"]) as picture:
        assert picture.format == "PNG"
    check_output(sb, output, "reframe_image")
