"""Every node in the manifest, run from the command line against `dreamnodes sandbox serve`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lumaai.types import CreditGetResponse, Generation
from lumaai.types.generations import ConceptListResponse
from pydantic import TypeAdapter

from dreamnodes.catalog.package import load_package
from dreamnodes.cli import main


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    """`dreamnodes sandbox serve` in its own process; yields the Luma and Pixazo base URLs."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dreamnodes.cli",
            "sandbox",
            "serve",
            "--port",
            "0",
            "--time-scale",
            "20",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    luma = proc.stdout.readline().strip().removeprefix("luma: ")
    pixazo = proc.stdout.readline().strip().removeprefix("pixazo: ")
    yield luma, pixazo
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code = main(["run", *argv, "--no-store", "--time-scale", "20"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    result: dict[str, Any] = out
    return result


def test_all_sixteen_nodes_run_and_parse_with_the_sdk_types(
    served: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    luma, pixazo = served
    root = luma.removesuffix("/dream-machine/v1")
    monkeypatch.setenv("LUMA_API_KEY", "luma-key-for-the-served-sandbox")
    monkeypatch.setenv("PIXAZO_API_KEY", "pixazo-key-for-the-served-sandbox")
    ran: set[str] = set()

    def node(name: str, params: dict[str, Any], *extra: str) -> dict[str, Any]:
        ran.add(name)
        return run(
            capsys, name, "--base-url", luma, "--wait", "--params", json.dumps(params), *extra
        )

    image = node(
        "generate_image",
        {"model": "Photon Flash 1", "prompt": "A red fox", "format": "png"},
        "--download",
        str(tmp_path),
    )
    assert Path(image["files"]["image"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    video = node(
        "dream_machine",
        {
            "model": "Ray 2 Flash",
            "prompt": "The fox runs",
            "start_image_url": image["assets"]["image"],
        },
    )
    vid = video["id"]
    clip = f"{root}/sandbox/assets/{vid}.mp4"
    created = [
        image,
        video,
        node("extend_video", {"generation_id": vid, "model": "ray-2", "prompt": "It runs on"}),
        node("upscale_video", {"generation_id": vid, "resolution": "1080p"}),
        node("add_audio", {"generation_id": vid, "prompt": "wind in the trees"}),
        node(
            "modify_video",
            {"video_url": clip, "mode": "flex_1", "model": "ray-2", "prompt": "in winter"},
        ),
        node("reframe_video", {"media_url": clip, "aspect_ratio": "9:16", "model": "ray-2"}),
        node(
            "reframe_image",
            {"media_url": image["assets"]["image"], "aspect_ratio": "16:9", "model": "photon-1"},
        ),
        node("get_generation", {"generation_id": vid}),
    ]
    for output in created:
        assert output["state"] == "completed"
        Generation.model_validate(output)  # the SDK's own type reads our output
    listed = node("list_generations", {"limit": 3})
    assert len(listed["generations"]) == 3 and listed["has_more"] is True
    for output in listed["generations"]:
        Generation.model_validate(output)
    concepts = node("list_concepts", {})["concepts"]
    TypeAdapter(ConceptListResponse).validate_python(concepts)
    assert "dolly_zoom" in concepts
    assert node("list_camera_motions", {})["camera_motions"]
    credits = node("get_credits", {})
    CreditGetResponse.model_validate({"credit_balance": credits["credit_balance_cents"]})
    saved = node(
        "download_asset", {"url": clip, "directory": str(tmp_path), "filename": "clip.mp4"}
    )
    assert Path(saved["path"]).read_bytes()[4:8] == b"ftyp"
    assert node("generation_updated", {"payload": created[-1]})["id"] == vid
    assert node("delete_generation", {"generation_id": vid}) == {"id": vid, "deleted": True}

    pix = run(
        capsys,
        "dream_machine",
        "--provider",
        "pixazo",
        "--base-url",
        pixazo,
        "--wait",
        "--params",
        json.dumps(
            {
                "model": "Ray 2 Flash",
                "prompt": "The fox runs",
                "start_image_url": image["assets"]["image"],
            }
        ),
    )
    assert (pix["state"], pix["provider"]) == ("completed", "pixazo")
    assert pix["assets"]["video"] and pix["request"]["image_url"] == image["assets"]["image"]

    # The Luma Agents nodes (their own sandbox face) run in tests/agents.
    agents_only = {
        n.id for n in load_package().nodes.values() if list(n.providers) == ["luma_agents"]
    }
    agents_only.add("upload_file")
    assert ran == set(load_package().nodes) - agents_only
    assert "luma-key-for-the-served-sandbox" not in json.dumps(created)
