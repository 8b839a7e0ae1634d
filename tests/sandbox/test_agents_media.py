"""Real media from the Agents face, downloaded through its presigned URLs and decoded: Ray 3.2
MP4s at 24 fps with the asked duration and aspect, start/end frames and keyframes at their frame
indexes, extensions, edits that show their source, reframes, UNI-1 pictures of the asked aspect
and layering's RGBA layers."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import httpx
import numpy as np
import pytest
from luma_agents import Luma
from luma_agents.types import Generation
from PIL import Image

from dreamnodes.sandbox import Sandbox
from dreamnodes.sandbox.media import decode_frames, probe_video

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 40), (30, 40, 220)
RAY: dict[str, Any] = {"model": "ray-3.2", "type": "video"}


@pytest.fixture
def sandbox(make_sandbox: Any) -> Sandbox:
    sandbox: Sandbox = make_sandbox()
    return sandbox


@pytest.fixture
def client(sandbox: Sandbox) -> Luma:
    return Luma(auth_token="luma-api-media", base_url=sandbox.luma_agents_url, max_retries=0)


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (160, 90)) -> dict[str, str]:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return {"data": base64.b64encode(out.getvalue()).decode(), "media_type": "image/png"}


def made(client: Luma, **body: Any) -> tuple[Generation, list[bytes]]:
    gen = client.generations.create(**body)
    deadline = time.monotonic() + 30
    while (gen := client.generations.get(gen.id)).state not in ("completed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert gen.state == "completed", gen.failure_reason
    assert gen.output
    return gen, [httpx.get(o.url).content for o in gen.output]


def near(frame: np.ndarray[Any, Any], colour: tuple[int, int, int], tolerance: float = 12) -> bool:
    mean = frame.reshape(-1, 3).mean(axis=0)
    return bool(np.abs(mean - np.asarray(colour)).max() < tolerance)


@pytest.mark.parametrize(
    ("duration", "ratio", "size"),
    [("5s", "16:9", (256, 144)), ("10s", "9:16", (144, 256)), ("5s", "21:9", (336, 144))],
)
def test_ray_clips_are_24_fps_with_the_asked_duration_and_aspect(
    client: Luma, duration: str, ratio: str, size: tuple[int, int]
) -> None:
    gen, (mp4,) = made(
        client, **RAY, prompt="waves", aspect_ratio=ratio, video={"duration": duration}
    )
    assert gen.output is not None and gen.output[0].type == "video"
    info = probe_video(mp4)
    seconds = int(duration.rstrip("s"))
    assert info.codec == "h264" and info.fps == 24.0
    assert info.frame_count == 24 * seconds + 1  # frame indexes 0..24*seconds
    assert abs(info.duration_s - seconds) < 0.1
    assert (info.width, info.height) == size


def test_keyframes_are_shown_at_their_indexes(client: Luma) -> None:
    _, (mp4,) = made(
        client,
        **RAY,
        prompt="colours",
        video={
            "keyframes": [solid(RED), solid(GREEN), solid(BLUE)],
            "keyframe_indexes": [10, 60, 120],
        },
    )
    frames = decode_frames(mp4)
    assert len(frames) == 121
    assert near(frames[10], RED) and near(frames[60], GREEN) and near(frames[120], BLUE)
    assert not near(frames[0], RED)  # before the first keyframe: the prompt's own picture
    assert not near(frames[35], RED) and not near(frames[35], GREEN)  # on the way


def test_start_and_end_frames_then_an_extension_from_its_last_frame(client: Luma) -> None:
    first, (mp4,) = made(
        client, **RAY, prompt="dusk", video={"start_frame": solid(RED), "end_frame": solid(BLUE)}
    )
    frames = decode_frames(mp4)
    assert near(frames[0], RED) and near(frames[-1], BLUE)
    _, (extended,) = made(
        client, **RAY, prompt="onwards", video={"start_frame": {"generation_id": first.id}}
    )
    assert near(decode_frames(extended)[0], BLUE)  # forward from the source's last frame
    _, (before,) = made(
        client, **RAY, prompt="before", video={"end_frame": {"generation_id": first.id}}
    )
    assert near(decode_frames(before)[-1], RED)  # back to the source's first frame


def test_a_video_edit_shows_its_source_and_its_keyframes(client: Luma) -> None:
    source, (original,) = made(
        client, **RAY, prompt="fade", video={"start_frame": solid(RED), "end_frame": solid(GREEN)}
    )
    _, (edited,) = made(
        client,
        model="ray-3.2",
        type="video_edit",
        prompt="make it dreamy",
        source={"generation_id": source.id},
        video={
            "edit": {"strength": "adhere_1", "keyframes": [solid(BLUE)], "keyframe_indexes": [60]}
        },
    )
    before, after = decode_frames(original), decode_frames(edited)
    assert len(after) == len(before)  # same duration as the source
    for index in (0, 30, 100):
        difference = np.abs(after[index].astype(int) - before[index].astype(int)).mean()
        assert difference < 40, index  # the source, lightly tinted and captioned
    assert near(after[60], BLUE)


def test_a_reframe_places_the_source_on_the_new_canvas(client: Luma) -> None:
    source, _ = made(
        client, **RAY, prompt="wide", aspect_ratio="16:9", video={"start_frame": solid(RED)}
    )
    _, (tall,) = made(
        client,
        model="ray-3.2",
        type="video_reframe",
        prompt="fill above and below",
        aspect_ratio="9:16",
        source={"generation_id": source.id},
    )
    info = probe_video(tall)
    assert (info.width, info.height, info.fps) == (144, 256, 24.0)
    first = decode_frames(tall)[0]
    assert near(first[120:136, 20:124], RED, 20)  # the source, fitted in the middle band
    assert not near(first[:30], RED, 40)  # the new canvas above it


@pytest.mark.parametrize(
    ("model", "ratio", "fmt", "size"),
    [
        ("uni-1", "3:1", "png", (512, 171)),
        ("uni-1", "9:16", None, (288, 512)),
        ("uni-1-max", "1:1", "jpeg", (512, 512)),
    ],
)
def test_pictures_have_the_asked_aspect_and_format(
    client: Luma, model: str, ratio: str, fmt: str | None, size: tuple[int, int]
) -> None:
    extra = {"output_format": fmt} if fmt else {}
    gen, (data,) = made(client, model=model, prompt="a map", aspect_ratio=ratio, **extra)
    picture = Image.open(io.BytesIO(data))
    assert picture.size == size
    assert picture.format == ("PNG" if fmt == "png" else "JPEG")
    assert gen.output is not None and gen.output[0].type == "image"


def test_an_image_edit_shows_its_source(client: Luma) -> None:
    _, (data,) = made(
        client,
        type="image_edit",
        prompt="warmer",
        source=solid(GREEN, (64, 48)),
        output_format="png",
    )
    picture = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert picture.shape[:2] == (384, 512)  # the source's 4:3
    assert near(picture[:60], GREEN, 60)  # green, tinted by the prompt


def test_layering_returns_rgba_layers_front_to_back(client: Luma) -> None:
    source = solid(RED, (200, 100))
    gen, layers = made(client, type="layering", prompt="", source=source)
    assert gen.output is not None and len(layers) == 3
    hints = []
    for index, (output, data) in enumerate(zip(gen.output, layers, strict=True)):
        assert output.layer is not None and output.layer.index == index
        assert 1 <= len(output.layer.label.split()) <= 2 and output.layer.description
        hints.append(output.layer.alpha_hint)
        layer = Image.open(io.BytesIO(data))
        assert layer.format == "PNG" and layer.mode == "RGBA" and layer.size == (512, 256)
        alpha = np.asarray(layer.getchannel("A"))
        if output.layer.alpha_hint == "none":
            assert alpha.min() == 255
        else:
            assert alpha.min() == 0 and alpha.max() == 255
        if output.layer.alpha_hint == "soft":
            assert ((alpha > 0) & (alpha < 255)).mean() > 0.05
    assert hints == ["hard", "soft", "none"]  # the last layer is the background
