"""Lists, credits, Download Asset and the Generation Updated trigger against the sandbox."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from lumaai.types import CreditGetResponse
from lumaai.types.generations import ConceptListResponse
from pydantic import TypeAdapter

from dreamnodes.errors import DreamError
from dreamnodes.sandbox import Sandbox

from .helpers import run_node


def raw(sb: Sandbox, path: str) -> Any:
    answer = httpx.get(sb.luma_url + path, headers={"Authorization": "Bearer k"})
    answer.raise_for_status()
    return answer.json()


def test_list_concepts_gives_the_keys_dream_machine_takes(sb: Sandbox) -> None:
    output = run_node(sb, "list_concepts", {})
    assert output["concepts"] == TypeAdapter(ConceptListResponse).validate_python(
        raw(sb, "/generations/concepts/list")
    )
    assert "dolly_zoom" in output["concepts"]
    first = output["concepts"][0]
    # the listed keys are what Dream Machine's concepts field accepts
    made = run_node(
        sb, "dream_machine", {"model": "ray-flash-2", "prompt": "A bridge", "concepts": [first]}
    )
    assert made["request"]["concepts"] == [{"key": first}]


def test_list_camera_motions(sb: Sandbox) -> None:
    output = run_node(sb, "list_camera_motions", {})
    assert output == {"camera_motions": raw(sb, "/generations/camera_motion/list")}
    assert "Orbit Left" in output["camera_motions"]


def test_get_credits_in_cents_and_dollars(sb: Sandbox) -> None:
    output = run_node(sb, "get_credits", {})
    balance = CreditGetResponse.model_validate(raw(sb, "/credits")).credit_balance
    assert output["credit_balance_cents"] == pytest.approx(balance)
    assert output["credit_balance_usd"] == pytest.approx(round(balance / 100, 2))


def test_download_asset_saves_the_sandbox_video(
    sb: Sandbox, video: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "clips"
    output = run_node(
        sb,
        "download_asset",
        {"url": video["assets"]["video"], "directory": str(folder), "filename": "ball"},
    )
    path = Path(output["path"])
    assert path == folder / "ball.mp4"
    data = path.read_bytes()
    assert output["bytes"] == len(data) > 1000
    assert output["sha256"] == hashlib.sha256(data).hexdigest()
    assert output["content_type"] == "video/mp4"
    assert data[4:8] == b"ftyp"
    assert [p.name for p in folder.iterdir()] == ["ball.mp4"]


def test_download_asset_refuses_a_cap_below_one_mb_before_downloading(
    sb: Sandbox, video: dict[str, Any], tmp_path: Path
) -> None:
    # the cap itself (streamed, no partial file) is tested in tests/downloads/test_download.py
    with pytest.raises(DreamError) as caught:
        run_node(
            sb,
            "download_asset",
            {"url": video["assets"]["video"], "directory": str(tmp_path), "max_mb": 0},
        )
    assert caught.value.code == "invalid_input" and caught.value.field == "max_mb"
    assert list(tmp_path.iterdir()) == []


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []
    handler = type("Handler", (_Receiver,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    server.shutdown()
    server.server_close()


def test_generation_updated_turns_a_recorded_callback_into_get_generation_output(
    sb: Sandbox, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = receiver
    made = run_node(
        sb,
        "generate_image",
        {"model": "photon-flash-1", "prompt": "A green circle", "callback_url": url},
        wait="poll",
    )
    deadline = time.monotonic() + 5
    while not any(b.get("state") == "completed" for b in bodies):
        assert time.monotonic() < deadline, (
            f"no completed callback; got {[b.get('state') for b in bodies]}"
        )
        time.sleep(0.02)
    completed = next(b for b in bodies if b.get("state") == "completed")
    triggered = run_node(sb, "generation_updated", {"payload": completed})
    assert triggered == run_node(sb, "get_generation", {"generation_id": made["id"]})
    assert triggered["assets"]["image"] == made["assets"]["image"]
    # an earlier update (dreaming) is a valid payload too, in its own state
    dreaming = next(b for b in bodies if b.get("state") == "dreaming")
    assert run_node(sb, "generation_updated", {"payload": dreaming})["state"] == "dreaming"


def test_generation_updated_from_a_stored_video(sb: Sandbox, video: dict[str, Any]) -> None:
    stored = next(g for g in sb.generations() if g["id"] == video["id"])
    assert run_node(sb, "generation_updated", {"payload": stored}) == run_node(
        sb, "get_generation", {"generation_id": video["id"]}
    )


@pytest.mark.parametrize(
    "payload",
    [{"hello": "world"}, {"id": "x", "state": "sleeping"}, {"request_id": "r", "status": "WEIRD"}],
)
def test_generation_updated_refuses_a_malformed_payload(
    sb: Sandbox, payload: dict[str, Any]
) -> None:
    with pytest.raises(DreamError) as caught:
        run_node(sb, "generation_updated", {"payload": payload})
    assert caught.value.code == "invalid_input"
    assert caught.value.field == "payload"


def test_generation_updated_needs_an_object(sb: Sandbox) -> None:
    with pytest.raises(DreamError) as caught:
        run_node(sb, "generation_updated", {"payload": [1, 2]})
    assert caught.value.field == "payload"
