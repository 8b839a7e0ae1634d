"""Media as a user gets it: generated through the API, downloaded from the asset URL, decoded."""

from __future__ import annotations

import io
import time

import httpx
import numpy as np
from lumaai import LumaAI
from PIL import Image, ImageOps

from dreamnodes.sandbox import Sandbox
from dreamnodes.sandbox.media import decode_frames, probe_video


def finished(client: LumaAI, generation_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = client.generations.get(generation_id)
        if got.state in ("completed", "failed"):
            assert got.state == "completed", got.failure_reason
            return got.model_dump()
        time.sleep(0.05)
    raise AssertionError("the generation did not finish")


def test_a_downloaded_image_to_video_has_the_asked_shape_and_starts_on_the_image(
    client: LumaAI, sandbox: Sandbox
) -> None:
    image = client.generations.image.create(
        prompt="A red fox in the snow", model="photon-1", aspect_ratio="9:16"
    )
    image_url = finished(client, str(image.id))["assets"]["image"]  # type: ignore[index]
    video = client.generations.video.create(
        model="ray-2",
        prompt="The fox turns its head",
        aspect_ratio="9:16",
        duration="9s",
        keyframes={"frame0": {"type": "image", "url": image_url}},
    )
    video_url = finished(client, str(video.id))["assets"]["video"]  # type: ignore[index]
    mp4 = httpx.get(video_url).content
    info = probe_video(mp4)
    assert abs(info.duration_s - 9.0) <= 0.2
    assert info.codec == "h264"
    assert abs(info.width / info.height - 9 / 16) < 0.02
    first = decode_frames(mp4)[0].astype(np.float64)
    start = Image.open(io.BytesIO(httpx.get(image_url).content)).convert("RGB")
    fitted = np.asarray(ImageOps.fit(start, (info.width, info.height)), dtype=np.float64)
    other = client.generations.video.create(
        model="ray-2", prompt="A blue whale at sea", aspect_ratio="9:16", duration="9s"
    )
    unrelated = decode_frames(
        httpx.get(finished(client, str(other.id))["assets"]["video"]).content
    )[0].astype(np.float64)  # type: ignore[index]
    assert np.abs(first - fitted).mean() < 8  # the start image is the first frame
    assert np.abs(unrelated - fitted).mean() > 25  # and a text-to-video clip is not


def test_add_audio_gives_the_clip_a_soundtrack_and_the_source_has_none(
    client: LumaAI, sandbox: Sandbox
) -> None:
    video = client.generations.video.create(model="ray-2", prompt="Waves on a beach")
    source = httpx.get(finished(client, str(video.id))["assets"]["video"]).content  # type: ignore[index]
    voiced = client.generations.audio(
        str(video.id), generation_type="add_audio", prompt="waves and gulls"
    )
    track = httpx.get(finished(client, str(voiced.id))["assets"]["video"]).content  # type: ignore[index]
    assert probe_video(source).audio_codec is None
    info = probe_video(track)
    assert info.audio_codec == "aac"
    assert abs(info.duration_s - probe_video(source).duration_s) <= 0.2
