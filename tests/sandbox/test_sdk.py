"""The official lumaai SDK does everything it can against the sandbox and parses each answer."""

from __future__ import annotations

from typing import Any

import httpx
from lumaai import LumaAI

from dreamnodes.sandbox import Sandbox


def test_ping_credits_concepts_camera_motions(client: LumaAI, done: Any, sandbox: Sandbox) -> None:
    assert client.ping.check().message == "pong"
    assert client.credits.get().credit_balance == 100000.0
    concepts = client.generations.concepts.list()
    assert "dolly_zoom" in concepts and "orbit_left" in concepts and len(concepts) >= 20
    motions = httpx.get(
        sandbox.luma_url + "/generations/camera_motion/list",
        headers={"Authorization": "Bearer k"},
    ).json()
    assert "Orbit Left" in motions


def test_text_to_video_goes_queued_dreaming_completed_with_an_mp4(
    client: LumaAI, done: Any, sandbox: Sandbox
) -> None:
    created = client.generations.create(prompt="A tiger walking in snow", model="ray-2")
    assert created.state == "queued"
    assert created.request is not None and created.request.model_dump() == {
        "generation_type": "video",
        "model": "ray-2",
        "prompt": "A tiger walking in snow",
        "aspect_ratio": "16:9",
        "loop": False,
        "resolution": "720p",
        "duration": "5s",
        "keyframes": None,
        "concepts": None,
        "callback_url": None,
    }
    done = done(client, created.id)
    assert done.state == "completed" and done.failure_reason is None
    assert done.assets.video.startswith(sandbox.base_url + "/sandbox/assets/")
    video = httpx.get(done.assets.video)
    assert video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    assert int(video.headers["content-length"]) == len(video.content)
    ranged = httpx.get(done.assets.video, headers={"Range": "bytes=0-7"})
    assert ranged.status_code == 206 and ranged.content == video.content[:8]
    seen = [s for m, p, s in sandbox.request_log() if p.endswith(created.id)]
    assert seen and all(s == 200 for s in seen)


def test_image_then_image_to_video_extend_upscale_audio(
    client: LumaAI, done: Any, sandbox: Sandbox
) -> None:
    image = client.generations.image.create(prompt="a red fox", model="photon-1", format="png")
    image = done(client, image.id)
    assert image.generation_type == "image" and image.state == "completed"
    png = httpx.get(image.assets.image)
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"

    i2v = client.generations.create(
        prompt="the fox runs",
        model="ray-flash-2",
        keyframes={"frame0": {"type": "image", "url": image.assets.image}},
    )
    i2v = done(client, i2v.id)
    assert i2v.state == "completed"
    extended = client.generations.create(
        prompt="it keeps running",
        model="ray-2",
        keyframes={"frame0": {"type": "generation", "id": i2v.id}},
    )
    reverse = client.generations.create(
        prompt="before that",
        model="ray-2",
        keyframes={"frame1": {"type": "generation", "id": i2v.id}},
    )
    upscaled = client.generations.upscale(i2v.id, resolution="1080p")
    audio = client.generations.audio(i2v.id, prompt="wind and birds")
    for created in (extended, reverse, upscaled, audio):
        assert done(client, created.id).state == "completed"
    assert upscaled.id != i2v.id
    assert upscaled.request.generation_type == "upscale_video"
    assert audio.request.generation_type == "add_audio"
    assert audio.model_extra["source_generation_id"] == i2v.id


def test_list_newest_first_with_paging_and_delete(client: LumaAI, done: Any) -> None:
    ids = [client.generations.create(prompt=f"clip {n}", model="ray-2").id for n in range(3)]
    page = client.generations.list(limit=2, offset=0)
    assert [g.id for g in page.generations] == [ids[2], ids[1]]
    assert page.has_more is True and page.count == 2
    rest = client.generations.list(limit=2, offset=2)
    assert [g.id for g in rest.generations] == [ids[0]] and rest.has_more is False
    client.generations.delete(ids[1])
    assert [g.id for g in client.generations.list().generations] == [ids[2], ids[0]]


def test_credits_go_down_and_failed_generations_are_refunded(client: LumaAI, done: Any) -> None:
    client.generations.create(prompt="a calm lake", model="ray-2", resolution="540p")
    assert client.credits.get().credit_balance == 100000.0 - 57.0
    failing = client.generations.create(
        prompt="a blacklisted scene", model="ray-2", resolution="540p"
    )
    done = done(client, failing.id)
    assert done.state == "failed" and done.failure_reason == "Contains blacklisted words"
    assert client.credits.get().credit_balance == 100000.0 - 57.0


def test_unreachable_keyframe_fails_the_generation(
    client: LumaAI, done: Any, sandbox: Sandbox
) -> None:
    created = client.generations.create(
        prompt="a moving scene",
        model="ray-2",
        keyframes={"frame0": {"type": "image", "url": sandbox.base_url + "/missing.jpg"}},
    )
    done = done(client, created.id)
    assert done.state == "failed"
    assert done.failure_reason == "Failed to read user input frames"


def test_modify_and_reframe(client: LumaAI, done: Any) -> None:
    source = done(client, client.generations.create(prompt="a city", model="ray-2").id)
    modified = client.generations.video.modify(
        media={"url": source.assets.video},
        mode="flex_1",
        model="ray-2",
        prompt="at night",
        generation_type="modify_video",
    )
    reframed = client.generations.video.reframe(
        media={"url": source.assets.video},
        aspect_ratio="9:16",
        model="ray-flash-2",
        generation_type="reframe_video",
    )
    image = done(client, client.generations.image.create(prompt="a cat", model="photon-flash-1").id)
    reframed_image = client.generations.image.reframe(
        media={"url": image.assets.image},
        aspect_ratio="1:1",
        model="photon-1",
        generation_type="reframe_image",
    )
    for created in (modified, reframed, reframed_image):
        assert done(client, created.id).state == "completed"
    assert reframed_image.generation_type == "image"
