"""The Pixazo gateway routes, --db persistence, and `python -m dreamnodes.sandbox serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from fakeserver import FakeServer, Request, Response
from lumaai import LumaAI

CREATE = (
    "/luma-dream-machine-ray-2-flash-image-to-video/v1/"
    "luma-dream-machine-ray-2-flash-image-to-video-request"
)
PK = {"Ocp-Apim-Subscription-Key": "pk", "Cache-Control": "no-cache"}


def _image_url(sandbox: Any, done: Any) -> str:
    client = LumaAI(auth_token="k", base_url=sandbox.luma_url)
    image = client.generations.image.create(prompt="snowy tree", model="photon-flash-1")
    return str(done(client, image.id).assets.image)


def test_pixazo_create_poll_complete_and_webhook(make_sandbox: Any, done: Any) -> None:
    sandbox = make_sandbox()
    hooks: list[dict[str, Any]] = []

    async def receive(req: Request) -> Response:
        hooks.append(json.loads(req.body))
        return Response(status_code=200)

    with FakeServer(receive) as receiver:
        answer = httpx.post(
            sandbox.pixazo_url + CREATE,
            json={"prompt": "spring arrives", "image_url": _image_url(sandbox, done)},
            headers={**PK, "X-Webhook-URL": receiver.base_url + "/cb"},
        )
        assert answer.status_code == 202
        job = answer.json()
        assert job["status"] == "QUEUED"
        assert job["polling_url"] == f"{sandbox.pixazo_url}/v2/requests/status/{job['request_id']}"
        seen = set()
        deadline = time.monotonic() + 10
        while True:
            status = httpx.get(job["polling_url"], headers=PK).json()
            seen.add(status["status"])
            if status["status"] in ("COMPLETED", "FAILED", "ERROR"):
                break
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert status["status"] == "COMPLETED" and "PROCESSING" in seen
        assert status["model_id"] == "luma-dream-machine-ray-2-flash-image-to-video"
        video = httpx.get(status["output"]["media_url"][0])
        assert video.content[4:8] == b"ftyp" and status["output"]["media_type"] == "video/mp4"
        time.sleep(0.2)
    assert [h["status"] for h in hooks] == ["COMPLETED"]  # terminal mode: once
    assert sandbox.pixazo_requests()[0]["request_id"] == job["request_id"]
    assert sandbox.generations()[0]["generation_type"] == "image"  # jobs are not Luma generations


def test_pixazo_auth_and_validation(make_sandbox: Any) -> None:
    sandbox = make_sandbox(api_key="secret")
    body = {"prompt": "spring", "image_url": "https://example.invalid/a.jpg"}
    missing = httpx.post(sandbox.pixazo_url + CREATE, json=body)
    assert missing.status_code == 401 and "missing subscription key" in missing.json()["message"]
    wrong = httpx.post(sandbox.pixazo_url + CREATE, json=body, headers=PK)
    assert wrong.status_code == 401
    good = {"Ocp-Apim-Subscription-Key": "secret"}
    bad = httpx.post(sandbox.pixazo_url + CREATE, json={"prompt": "spring"}, headers=good)
    assert bad.status_code == 400 and bad.json()["message"] == "image_url is required"
    insecure = httpx.post(
        sandbox.pixazo_url + CREATE,
        json=body,
        headers={**good, "X-Webhook-URL": "http://example.com/cb"},
    )
    assert insecure.status_code == 400
    unknown = httpx.get(sandbox.pixazo_url + "/v2/requests/status/nope", headers=good)
    assert unknown.status_code == 404


def test_db_keeps_generations_and_credits_across_restarts(
    make_sandbox: Any, done: Any, tmp_path: Path
) -> None:
    db = str(tmp_path / "sandbox.db")
    first = make_sandbox(db=db)
    client = LumaAI(auth_token="k", base_url=first.luma_url)
    gen_id = done(client, client.generations.create(prompt="a lighthouse", model="ray-2").id).id
    pending = client.generations.create(prompt="a harbour", model="ray-2").id
    balance = client.credits.get().credit_balance
    first.stop()

    second = make_sandbox(db=db)
    client = LumaAI(auth_token="k", base_url=second.luma_url)
    again = client.generations.get(gen_id)
    assert again.state == "completed" and again.request.prompt == "a lighthouse"
    assert client.credits.get().credit_balance == balance
    assert done(client, pending).state == "completed"  # unfinished work carries on
    video = httpx.get(
        client.generations.get(gen_id).assets.video.replace(first.base_url, second.base_url)
    )
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"  # re-rendered on demand


def test_serve_prints_three_labelled_urls_and_exits_cleanly_on_sigterm() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dreamnodes.sandbox", "serve", "--port", "0", "--no-render"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        labels = [line.split(": ", 1)[0] for line in lines]
        assert labels == ["luma", "pixazo", "luma_agents"], lines
        luma_url, pixazo_url, agents_url = (line.split(": ", 1)[1] for line in lines)
        assert luma_url.startswith("http://127.0.0.1:") and luma_url.endswith("/dream-machine/v1")
        assert luma_url == pixazo_url + "/dream-machine/v1"
        assert agents_url == pixazo_url + "/agents/v1"
        ping = httpx.get(luma_url + "/ping", headers={"Authorization": "Bearer k"})
        assert ping.json() == {"message": "pong"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
