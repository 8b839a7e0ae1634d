"""`dreamnodes nodes`, `nodes --json` and `describe`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dreamnodes.cli import main

NODES = ["dream_machine", "get_generation", "list_generations", "delete_generation", "extend_video"]


def test_nodes_lists_every_node_with_its_action(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nodes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    ids = [line.split()[0] for line in lines]
    for node in NODES:
        assert node in ids
    dream = next(line for line in lines if line.startswith("dream_machine "))
    assert "Generate a video" in dream


def test_nodes_json_is_the_node_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nodes", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_id = {row["id"]: row for row in rows}
    assert set(NODES) <= set(by_id)
    assert by_id["dream_machine"]["kind"] == "create"
    assert by_id["dream_machine"]["title"] == "Dream Machine"
    assert "luma" in by_id["dream_machine"]["providers"]
    assert by_id["delete_generation"]["kind"] == "delete"


def test_describe_shows_fields_labels_and_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "dream_machine"]) == 0
    out = capsys.readouterr().out
    assert "Dream Machine (dream_machine)" in out
    for name in (
        "model",
        "prompt",
        "aspect_ratio",
        "duration",
        "resolution",
        "loop",
        "start_image_url",
        "end_image_url",
        "concepts",
        "callback_url",
    ):
        assert f"  {name} " in out, name
    assert 'Ray 2 (best) = "ray-2"' in out
    assert 'Ray 2 Flash = "ray-flash-2"' in out
    assert "rule: loop: loop is not supported with an end image" in out
    assert "rule: prompt: a prompt, a start image or an end image is required" in out


def test_describe_extend_video_lists_its_keyframe_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "extend_video"]) == 0
    out = capsys.readouterr().out
    assert "Backward (lead up to it)" in out
    assert "rule: image_url: an interpolation takes two generations and no image" in out


def test_describe_json_gives_node_and_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "get_generation", "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["node"]["id"] == "get_generation"
    assert described["input_schema"]["required"] == ["generation_id"]


@pytest.mark.parametrize("command", ["describe", "run"])
def test_unknown_node_exits_2_naming_it(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [command, "no_such_node"] + (
        ["--base-url", "http://127.0.0.1:9", "--no-store"] if command == "run" else []
    )
    assert main(argv) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error["code"] == "invalid_input"
    assert "no_such_node" in error["message"]
    assert "no_such_node" in captured.err
    assert "Traceback" not in captured.err


def test_nodes_through_a_real_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dreamnodes.cli", "nodes"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines()]
    assert set(NODES) <= set(listed)


def test_describe_unknown_through_a_real_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dreamnodes.cli", "describe", "../x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "error" in json.loads(done.stdout)
    assert done.stderr.startswith("dreamnodes: ") and "Traceback" not in done.stderr
