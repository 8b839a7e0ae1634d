"""The official `luma-agents` SDK, unchanged, against the sandbox's Agents API face: every
method of both resources, the Files flow through the presigned URL, the lifecycle and failure
codes, and typed errors for invalid combinations, unknown ids and a wrong key."""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import luma_agents
import numpy as np
import pytest
from luma_agents import Luma
from luma_agents.types import Generation
from PIL import Image

from dreamnodes.sandbox import Sandbox
from dreamnodes.sandbox.media.codec import encode_mp4

MakeSandbox = Any


def png(colour: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def data_ref(picture: bytes) -> dict[str, str]:
    return {"data": base64.b64encode(picture).decode(), "media_type": "image/png"}


def finish(client: Luma, gen_id: str, timeout: float = 20.0) -> Generation:
    deadline = time.monotonic() + timeout
    while True:
        generation = client.generations.get(gen_id)
        if generation.state in ("completed", "failed"):
            return generation
        assert time.monotonic() < deadline, f"{gen_id} still {generation.state}"
        time.sleep(0.02)


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    sandbox: Sandbox = make_sandbox(render=False)
    return sandbox


@pytest.fixture
def client(sandbox: Sandbox) -> Luma:
    return Luma(auth_token="luma-api-test", base_url=sandbox.luma_agents_url, max_retries=0)


def test_generation_lifecycle_create_then_get_until_completed(client: Luma) -> None:
    created = client.generations.create(prompt="a lighthouse at dusk", aspect_ratio="16:9")
    assert created.state == "queued" and created.output == []
    assert (created.model, created.type) == ("uni-1", "image")  # the defaults
    uuid.UUID(created.id)
    seen = {created.state}
    deadline = time.monotonic() + 10
    while (got := client.generations.get(created.id)).state != "completed":
        seen.add(got.state)
        assert got.state in ("queued", "processing") and got.output == []
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert "processing" in seen
    assert got.failure_code is None and got.failure_reason is None
    assert got.output is not None and [o.type for o in got.output] == ["image"]
    assert "X-Amz-Expires=3600" in got.output[0].url
    assert got.created_at == created.created_at


def test_every_response_has_the_version_and_request_id_headers(client: Luma) -> None:
    raw = client.generations.with_raw_response.create(
        prompt="a red kite", extra_headers={"X-Request-Id": "trace-123"}
    )
    assert raw.http_response.status_code == 201
    assert raw.headers["x-api-version"] == "2026-04-01"
    assert raw.headers["x-request-id"] == "trace-123"
    assert int(raw.headers["x-ratelimit-limit"]) == 30
    assert int(raw.headers["x-ratelimit-remaining"]) == 29
    assert int(raw.headers["x-ratelimit-reset"]) >= int(time.time())
    got = client.generations.with_raw_response.get(raw.parse().id)
    uuid.UUID(got.headers["x-request-id"])
    assert got.headers["x-api-version"] == "2026-04-01"
    assert "x-ratelimit-limit" not in got.headers  # GETs are outside the RPM bucket
    with pytest.raises(luma_agents.NotFoundError) as caught:
        client.generations.get(str(uuid.uuid4()))
    assert caught.value.response.headers["x-api-version"] == "2026-04-01"


def test_files_flow_presigned_put_complete_ready_get_list_delete(client: Luma) -> None:
    picture = png()
    created = client.files.create(
        mime_type="image/png", size_bytes=len(picture), filename="red.png", purpose="reference"
    )
    assert created.state == "pending" and created.id == created.file.id
    assert created.file.filename == "red.png" and created.file.purpose == "reference"
    upload = created.upload
    assert upload is not None and upload.method == "PUT" and upload.url.startswith("http://")
    put = httpx.put(upload.url, content=picture, headers=upload.headers)
    assert put.status_code == 200 and put.headers["etag"]
    completed = client.files.complete(created.id)
    assert completed.state == "pending"  # ingest runs asynchronously
    deadline = time.monotonic() + 5
    while (file := client.files.get(created.id)).state == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert file.state == "ready" and file.size_bytes == len(picture)
    listed = client.files.list()
    assert [f.id for f in listed.data] == [created.id] and listed.has_more is False
    assert client.files.list(purpose="input").data == []
    assert [f.id for f in client.files.list(state="ready").data] == [created.id]
    assert client.files.delete(created.id) is None
    gone = client.files.get(created.id)
    assert gone.state == "deleted" and gone.deleted_at is not None
    assert client.files.list().data == []  # deleted files show only when asked for
    assert [f.id for f in client.files.list(state="deleted").data] == [created.id]


def test_files_list_pages_newest_first_with_a_cursor(client: Luma) -> None:
    ids = [client.files.create(mime_type="image/png", size_bytes=10).id for _ in range(5)]
    first = client.files.list(limit=2)
    assert [f.id for f in first.data] == ids[::-1][:2] and first.has_more
    assert first.next_cursor is not None
    second = client.files.list(limit=2, cursor=first.next_cursor)
    third = client.files.list(limit=2, cursor=second.next_cursor or "")
    assert [f.id for f in second.data + third.data] == ids[::-1][2:]
    assert third.has_more is False and third.next_cursor is None
    with pytest.raises(luma_agents.BadRequestError, match="limit"):
        client.files.list(limit=101)
    with pytest.raises(luma_agents.BadRequestError, match="cursor"):
        client.files.list(cursor="not-a-cursor")


def test_an_uploaded_file_is_usable_by_id_only_once_ready(client: Luma) -> None:
    picture = png((30, 160, 60))
    created = client.files.create(mime_type="image/png", size_bytes=len(picture))
    assert created.upload is not None
    with pytest.raises(luma_agents.BadRequestError, match="not ready"):
        client.generations.create(
            prompt="make it blue", type="image_edit", source={"file_id": created.id}
        )
    httpx.put(created.upload.url, content=picture, headers=created.upload.headers)
    client.files.complete(created.id)
    while client.files.get(created.id).state != "ready":
        time.sleep(0.01)
    edit = client.generations.create(
        prompt="make it blue", type="image_edit", source={"file_id": created.id}
    )
    assert finish(client, edit.id).state == "completed"
    client.files.delete(created.id)
    with pytest.raises(luma_agents.BadRequestError, match="deleted"):
        client.generations.create(prompt="again", type="image_edit", source={"file_id": created.id})


def test_inline_multipart_upload_skips_complete(sandbox: Sandbox, client: Luma) -> None:
    picture = png()
    answer = httpx.post(
        sandbox.luma_agents_url + "/files",
        headers={"Authorization": "Bearer luma-api-test"},
        data={"purpose": "input", "filename": "inline.png"},
        files={"file": ("inline.png", picture, "image/png")},
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["upload"] is None and body["file"]["size_bytes"] == len(picture)
    while client.files.get(body["id"]).state == "pending":
        time.sleep(0.01)
    assert client.files.get(body["id"]).state == "ready"


def test_a_file_that_is_not_what_it_claims_fails_ingest(client: Luma) -> None:
    junk = b"certainly not a png" * 4
    created = client.files.create(mime_type="image/png", size_bytes=len(junk))
    assert created.upload is not None
    httpx.put(created.upload.url, content=junk, headers=created.upload.headers)
    client.files.complete(created.id)
    while (file := client.files.get(created.id)).state == "pending":
        time.sleep(0.01)
    assert file.state == "failed" and file.failure_reason


def test_presigned_put_checks_size_type_and_signature(client: Luma) -> None:
    created = client.files.create(mime_type="image/png", size_bytes=100)
    upload = created.upload
    assert upload is not None
    short = httpx.put(upload.url, content=b"x" * 99, headers=upload.headers)
    assert short.status_code == 400 and b"<Code>IncompleteBody</Code>" in short.content
    long = httpx.put(upload.url, content=b"x" * 101, headers=upload.headers)
    assert long.status_code == 400
    wrong_type = httpx.put(upload.url, content=b"x" * 100, headers={"Content-Type": "image/jpeg"})
    assert wrong_type.status_code == 403
    forged = httpx.put(upload.url.replace("Signature=", "Signature=0"), content=b"x" * 100)
    assert forged.status_code == 403 and b"SignatureDoesNotMatch" in forged.content
    with pytest.raises(luma_agents.BadRequestError, match="No bytes"):
        client.files.complete(created.id)


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"prompt": ""}, "Prompt must be between 1 and 6000 characters"),
    ({"prompt": "x" * 6001}, "Prompt must be between 1 and 6000 characters"),
    ({"prompt": "a", "model": "ray-9"}, "Unknown model: ray-9"),
    ({"prompt": "a", "type": "video"}, "Type 'video' is not supported for model 'uni-1'"),
    ({"prompt": "a", "model": "uni-1-max", "type": "layering"}, "not supported for model"),
    ({"prompt": "a", "aspect_ratio": "4:3"}, "aspect_ratio: '4:3' is not supported"),
    ({"prompt": "a", "model": "ray-3.2", "type": "video", "aspect_ratio": "3:1"}, "aspect_ratio"),
    ({"prompt": "a", "type": "image_edit"}, "source: required for type 'image_edit'"),
    ({"prompt": "a", "source": {"url": "https://example.com/a.png"}}, "source: only valid"),
    ({"prompt": "a", "image_ref": [{"url": "https://e.com/a.png"}] * 10}, "image_ref: at most 9"),
    ({"prompt": "a", "user_id": "u" * 257}, "user_id"),
    (
        {"prompt": "a", "type": "image_edit", "source": {"data": "aGVsbG8="}},
        "source: media_type is required with data",
    ),
    (
        {"prompt": "a", "type": "image_edit", "source": {"url": "https://e/a", "file_id": "f"}},
        "source: provide exactly one of",
    ),
]
RAY = {"prompt": "a", "model": "ray-3.2", "type": "video"}
RAY_ONLY: dict[str, Any] = {"model": "ray-3.2", "type": "video"}
FRAME = {"url": "https://example.com/frame.png"}
INVALID_VIDEO: list[tuple[dict[str, Any], str]] = [
    ({"loop": True, "duration": "10s"}, "video.loop: not supported with duration 10s"),
    ({"loop": True, "hdr": True}, "video.loop: not supported with hdr"),
    ({"exr_export": True}, "video.exr_export: requires hdr=true"),
    ({"hdr": True, "resolution": "360p"}, "video.hdr: requires resolution 720p or 1080p"),
    ({"duration": "7s"}, "video.duration"),
    (
        {"keyframes": [FRAME], "keyframe_indexes": [0], "start_frame": FRAME},
        "video.keyframes: cannot be combined with start_frame or end_frame",
    ),
    (
        {"keyframes": [FRAME], "keyframe_indexes": [0], "loop": True},
        "video.keyframes: cannot be combined with loop",
    ),
    ({"keyframes": [FRAME, FRAME], "keyframe_indexes": [0]}, "same length"),
    ({"keyframes": [FRAME, FRAME], "keyframe_indexes": [3, 3]}, "must be unique"),
    ({"keyframes": [FRAME], "keyframe_indexes": [121]}, "121 is outside 0..120 for duration 5s"),
    ({"keyframes": [FRAME] * 65, "keyframe_indexes": list(range(65))}, "1 to 64"),
    ({"edit": {"strength": "adhere_1"}}, "video.edit: only valid for type 'video_edit'"),
    ({"source_position": {"x_norm": 0, "y_norm": 0, "w_norm": 1, "h_norm": 1}}, "only valid"),
    ({"start_frame": FRAME, "duration": "10s"}, "10s is not supported with start_frame"),
]


@pytest.mark.parametrize(("body", "text"), INVALID)
def test_invalid_requests_are_bad_request_errors_in_luma_wording(
    client: Luma, body: dict[str, Any], text: str
) -> None:
    with pytest.raises(luma_agents.BadRequestError) as caught:
        client.generations.create(**body)
    assert text in caught.value.body["detail"]  # type: ignore[index]


@pytest.mark.parametrize(("video", "text"), INVALID_VIDEO)
def test_invalid_video_combinations_are_bad_request_errors(
    client: Luma, video: dict[str, Any], text: str
) -> None:
    with pytest.raises(luma_agents.BadRequestError) as caught:
        client.generations.create(**RAY, video=video)  # type: ignore[arg-type]
    assert text in caught.value.body["detail"]  # type: ignore[index]


def test_rules_that_depend_on_the_type(client: Luma) -> None:
    source = {"url": "https://example.com/clip.mp4", "media_type": "video/mp4"}
    reframe = {"prompt": "a", "model": "ray-3.2", "type": "video_reframe", "source": source}
    with pytest.raises(luma_agents.BadRequestError, match="not supported for type 'video_reframe'"):
        client.generations.create(**reframe, video={"hdr": True})  # type: ignore[arg-type]
    with pytest.raises(luma_agents.BadRequestError, match="coming soon"):
        client.generations.create(
            **reframe,  # type: ignore[arg-type]
            aspect_ratio="9:16",
            video={"resolution": "1080p"},
        )
    edit = {"prompt": "a", "model": "ray-3.2", "type": "video_edit"}
    with pytest.raises(luma_agents.BadRequestError, match="media_type is required with url"):
        client.generations.create(**edit, source={"url": "https://e.com/clip.mp4"})  # type: ignore[arg-type]
    with pytest.raises(luma_agents.BadRequestError, match="video/\\* type"):
        client.generations.create(
            **edit,  # type: ignore[arg-type]
            source={"url": "https://e.com/a.png", "media_type": "image/png"},
        )
    with pytest.raises(
        luma_agents.BadRequestError, match=r"cannot be combined with video\.start_frame"
    ):
        client.generations.create(
            **edit,  # type: ignore[arg-type]
            source=source,
            video={"start_frame": FRAME, "edit": {"keyframes": [FRAME], "keyframe_indexes": [4]}},
        )
    with pytest.raises(luma_agents.BadRequestError, match="loop: only supported for type 'video'"):
        client.generations.create(**edit, source=source, video={"loop": True})  # type: ignore[arg-type]
    with pytest.raises(luma_agents.BadRequestError, match="source: required for type 'layering'"):
        client.generations.create(prompt="", type="layering")
    with pytest.raises(luma_agents.BadRequestError, match="500 characters"):
        client.generations.create(prompt="x" * 501, type="layering", source=FRAME)


def test_bad_media_data_is_unprocessable(client: Luma) -> None:
    with pytest.raises(luma_agents.UnprocessableEntityError, match="base64"):
        client.generations.create(
            prompt="a", type="image_edit", source={"data": "%%%", "media_type": "image/png"}
        )
    with pytest.raises(luma_agents.UnprocessableEntityError, match="not an image"):
        client.generations.create(
            prompt="a",
            type="image_edit",
            source={"data": base64.b64encode(b"plain text").decode(), "media_type": "image/png"},
        )
    with pytest.raises(luma_agents.UnprocessableEntityError, match="could not fetch"):
        client.generations.create(prompt="a", image_ref=[{"url": "http://127.0.0.1:9/missing.png"}])


def test_unknown_ids_are_not_found_errors(client: Luma, sandbox: Sandbox) -> None:
    for gen_id in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(luma_agents.NotFoundError) as caught:
            client.generations.get(gen_id)
        assert caught.value.body == {"detail": "Generation not found"}
    for call in (client.files.get, client.files.complete, client.files.delete):
        with pytest.raises(luma_agents.NotFoundError):
            call(str(uuid.uuid4()))
    mine = client.generations.create(prompt="mine")
    other = Luma(auth_token="luma-api-someone-else", base_url=sandbox.luma_agents_url)
    with pytest.raises(luma_agents.NotFoundError):
        other.generations.get(mine.id)  # another key's generation
    with pytest.raises(luma_agents.BadRequestError, match="not found"):
        other.generations.create(
            prompt="edit", type="image_edit", source={"generation_id": mine.id}
        )


def test_keys_are_checked(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(api_key="luma-api-right", render=False)
    wrong = Luma(auth_token="luma-api-wrong", base_url=sandbox.luma_agents_url, max_retries=0)
    with pytest.raises(luma_agents.AuthenticationError, match="Invalid API key"):
        wrong.generations.create(prompt="a")
    missing = httpx.post(sandbox.luma_agents_url + "/generations", json={"prompt": "a"})
    assert missing.status_code == 401 and missing.json() == {"detail": "Missing or invalid API key"}
    assert missing.headers["x-api-version"] == "2026-04-01"


def test_failure_codes_reach_the_generation(client: Luma) -> None:
    for code in ("generation_failed", "output_not_found", "budget_exhausted", "rate_limited"):
        failed = finish(client, client.generations.create(prompt=f"a cat [fail:{code}]").id)
        assert (failed.state, failed.failure_code) == ("failed", code)
        assert failed.failure_reason and failed.output == []
    moderated = finish(client, client.generations.create(prompt="something blacklisted").id)
    assert moderated.failure_code == "content_moderated"
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    unsupported = client.generations.create(
        prompt="edit", type="image_edit", source=data_ref(gif.getvalue())
    )
    assert finish(client, unsupported.id).failure_code == "unsupported_format"
    truncated = client.generations.create(
        prompt="edit", type="image_edit", source=data_ref(png(size=(300, 300))[:80])
    )
    assert finish(client, truncated.id).failure_code == "corrupt_input"


def test_a_create_beyond_the_balance_is_402_and_failed_jobs_are_refunded(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(render=False, agents_balance_usd=0.05)
    client = Luma(auth_token="k", base_url=sandbox.luma_agents_url, max_retries=0)
    failed = client.generations.create(prompt="a [fail:generation_failed]")  # $0.0404
    assert finish(client, failed.id).state == "failed"
    client.generations.create(prompt="a second image")  # affordable again after the refund
    with pytest.raises(luma_agents.APIStatusError) as caught:
        client.generations.create(prompt="a third image")
    assert caught.value.status_code == 402
    assert caught.value.body == {"detail": "Insufficient balance"}


def test_a_url_reference_to_an_own_output_is_fetched(client: Luma) -> None:
    image = finish(client, client.generations.create(prompt="a pear", output_format="png").id)
    assert image.output is not None
    edit = client.generations.create(
        prompt="a ripe pear", type="image_edit", source={"url": image.output[0].url}
    )
    assert finish(client, edit.id).state == "completed"
    chained = client.generations.create(
        prompt="a riper pear", type="image_edit", source={"generation_id": edit.id}
    )
    assert finish(client, chained.id).state == "completed"
    video = finish(client, client.generations.create(prompt="a", **RAY_ONLY).id)
    with pytest.raises(luma_agents.BadRequestError, match="an image generation is required"):
        client.generations.create(prompt="b", type="image_edit", source={"generation_id": video.id})


def test_a_video_edit_source_over_18_seconds_is_refused(client: Luma) -> None:
    black = np.zeros((16, 16, 3), np.uint8)
    clip = encode_mp4((black for _ in range(38)), 16, 16, 2)  # 19 s at 2 fps
    source = {"data": base64.b64encode(clip).decode(), "media_type": "video/mp4"}
    with pytest.raises(luma_agents.BadRequestError, match="18 seconds or shorter"):
        client.generations.create(prompt="a", model="ray-3.2", type="video_edit", source=source)


def test_faults_keep_the_headers_and_a_lost_create_still_runs(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(render=False, fault_rate_truncated=1.0)
    auth = {"Authorization": "Bearer luma-api-k"}
    with httpx.stream("GET", sandbox.luma_agents_url + "/files", headers=auth) as answer:
        assert answer.status_code == 200 and answer.headers["x-api-version"] == "2026-04-01"
        with pytest.raises(httpx.RemoteProtocolError):
            answer.read()  # half a body, then the connection closes
    lost = make_sandbox(render=False, fault_rate_drop_after=1.0)
    client = Luma(auth_token="luma-api-k", base_url=lost.luma_agents_url, max_retries=0)
    with pytest.raises(luma_agents.APIConnectionError):
        client.generations.create(prompt="lost answer")
    assert [g["state"] for g in lost.agents_generations()] in (["queued"], ["processing"])


def test_unknown_paths_and_methods(sandbox: Sandbox) -> None:
    auth = {"Authorization": "Bearer luma-api-k"}
    base = sandbox.luma_agents_url
    assert httpx.get(base + "/usage", headers=auth).status_code == 404
    missing = httpx.get(base + "x/generations", headers=auth)
    assert missing.status_code == 404 and missing.headers["x-api-version"] == "2026-04-01"
    assert httpx.get(base + "/generations", headers=auth).status_code == 405  # no list
    assert httpx.delete(base + f"/generations/{uuid.uuid4()}", headers=auth).status_code == 405
    broken = httpx.post(base + "/generations", content=b"{", headers=auth)
    assert broken.status_code == 400 and "JSON" in broken.json()["detail"]


def test_the_sdk_against_sandbox_serve_on_its_labelled_line() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = ["serve", "--port", "0", "--no-render", "--time-scale", "20", "--agents-per-minute", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dreamnodes.sandbox", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = dict(proc.stdout.readline().strip().split(": ", 1) for _ in range(3))
        client = Luma(auth_token="luma-api-k", base_url=lines["luma_agents"], max_retries=0)
        done = finish(client, client.generations.create(prompt="served").id)
        assert done.state == "completed"
        assert client.files.create(mime_type="image/jpeg", size_bytes=3).state == "pending"
        client.generations.create(prompt="second")
        with pytest.raises(luma_agents.RateLimitError):
            client.generations.create(prompt="third")  # --agents-per-minute 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_hdr_needs_access(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(render=False, agents_hdr_access=False)
    client = Luma(auth_token="luma-api-k", base_url=sandbox.luma_agents_url, max_retries=0)
    with pytest.raises(luma_agents.BadRequestError, match="HDR access"):
        client.generations.create(prompt="a", **RAY_ONLY, video={"hdr": True})
    assert client.generations.create(prompt="a", **RAY_ONLY, video={"resolution": "360p"}).id
