"""The main job: a video generated against the sandbox, waited for, saved as a playable MP4."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dreamnodes.cli import main
from dreamnodes.sandbox.media import probe_video

PARAMS = '{"model": "Ray 2 (best)", "prompt": "{{trigger.prompt}}", "loop": "No"}'
CONTEXT = '{"trigger": {"prompt": "A tiger walking in snow"}}'


def check_video(output: dict[str, object], folder: Path) -> None:
    assert output["state"] == "completed"
    assert output["model"] == "ray-2"
    assert output["provider"] == "luma"
    request = output["request"]
    assert isinstance(request, dict)
    assert request["prompt"] == "A tiger walking in snow"
    assert request["loop"] is False
    files = output["files"]
    assert isinstance(files, dict)
    path = Path(str(files["video"]))
    assert path.parent == folder and path.name == f"{output['id']}.mp4"
    info = probe_video(path.read_bytes())
    assert abs(info.duration_s - 5.0) <= 0.2, info
    assert info.frame_count > 0
    assert info.codec == "h264", info


def test_main_job_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "videos"
    code = main(
        [
            "run",
            "dream_machine",
            "--sandbox",
            "--wait",
            "--download",
            str(folder),
            "--params",
            PARAMS,
            "--context",
            CONTEXT,
            "--no-store",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured
    check_video(json.loads(captured.out), folder)


def test_main_job_through_the_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("dreamnodes")
    assert script.exists()
    folder = tmp_path / "out"
    env = {**os.environ, "DREAMNODES_STORE": str(tmp_path / "runs.sqlite3")}
    env.pop("LUMA_API_KEY", None)  # --sandbox needs none
    done = subprocess.run(
        [
            str(script),
            "run",
            "dream_machine",
            "--sandbox",
            "--wait",
            "--download",
            str(folder),
            "--params",
            PARAMS,
            "--context",
            CONTEXT,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    check_video(json.loads(done.stdout), folder)
    assert (tmp_path / "runs.sqlite3").exists()  # the run log went where it was told
