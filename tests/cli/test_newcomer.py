"""Issue 10, replayed from the command line: what a newcomer types, and what they must see."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dreamnodes.api.scheduler import Scheduler
from dreamnodes.cli import main

from .conftest import GEN_ID, CountingServer, created, status

SCALE = "100"
FOX = {"prompt": "A fox in snow"}


@pytest.fixture(autouse=True)
def _fresh(env: None) -> Iterator[None]:
    Scheduler._registry.clear()
    yield
    Scheduler._registry.clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def as_json(text: str) -> Any:
    return json.loads(text)


def as_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


# 1. The node's own Wait For Completion field is honoured; only an explicit --wait overrides.
@pytest.mark.parametrize("how", [["--params", json.dumps({**FOX, "wait": "poll"})]])
def test_1_node_wait_field_is_honoured(capsys: pytest.CaptureFixture[str], how: list[str]) -> None:
    for argv in (how, ["--params", json.dumps(FOX), "--set", "wait=poll"]):
        code, out, _ = run(
            capsys, "run", "dream_machine", "--sandbox", "--time-scale", SCALE, *argv
        )
        assert code == 0 and as_json(out)["state"] == "completed"
    argv = ["--params", json.dumps({**FOX, "wait": "poll"}), "--wait", "none"]
    code, out, _ = run(capsys, "run", "dream_machine", "--sandbox", *argv)
    assert code == 0 and as_json(out)["state"] == "queued"


# 2. --download without --wait waits (polls) and saves the file.
def test_2_download_without_wait_polls_and_saves(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "videos"
    argv = ["--params", json.dumps(FOX), "--download", str(folder), "--time-scale", SCALE]
    code, out, _ = run(capsys, "run", "dream_machine", "--sandbox", *argv)
    output = as_json(out)
    assert code == 0 and output["state"] == "completed"
    assert (
        Path(output["files"]["video"]).is_file() and Path(output["files"]["video"]).parent == folder
    )


# 3. Bad timeouts are refused before anything is sent; the wait message says what it waited.
@pytest.mark.parametrize("timeout", ["0", "-5", "nan", "inf"])
def test_3_bad_timeout_refused_before_sending(
    capsys: pytest.CaptureFixture[str],
    serve: Callable[..., CountingServer],
    timeout: str,
) -> None:
    server = serve(created)
    argv = ["--params", json.dumps(FOX), "--base-url", server.url, f"--timeout={timeout}"]
    code, out, err = run(capsys, "run", "dream_machine", *argv)
    assert code == 2 and server.count == 0
    assert "timeout" in as_json(out)["error"]["message"] and "usage:" in err


def test_3_wait_timeout_says_the_real_wait(
    capsys: pytest.CaptureFixture[str], serve: Callable[..., CountingServer]
) -> None:
    server = serve(created)  # always queued
    argv = ["--params", json.dumps(FOX), "--base-url", server.url, "--wait", "--timeout", "2.5"]
    code, out, _ = run(capsys, "run", "dream_machine", *argv)
    error = as_json(out)["error"]
    assert code == 1 and error["code"] == "wait_timeout"
    assert "(timeout 2.5 s)" in error["message"] and "after waiting" in error["message"]


# 4. A required field with a default may be left out; every field's error comes at once.
def test_4_defaults_filled_and_every_error_listed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "run", "dream_machine", "--params", json.dumps(FOX), "--dry-run")
    assert code == 0 and as_json(out)["request"]["body"]["model"] == "ray-2"
    bad = {"prompt": 42, "aspect_ratio": "5:4", "resolution": "8k"}
    code, out, _ = run(capsys, "run", "dream_machine", "--params", json.dumps(bad), "--dry-run")
    error = as_json(out)["error"]
    assert code == 2 and error["field"] == error["errors"][0]["field"]
    assert {e["field"] for e in error["errors"]} == {"prompt", "aspect_ratio", "resolution"}


# 5. Any unambiguous spelling of a value or its title; ambiguity names the candidates.
@pytest.mark.parametrize(
    ("field", "given", "value"),
    [
        ("model", "Ray 2", "ray-2"),
        ("model", "ray 2", "ray-2"),
        ("model", "ray2", "ray-2"),
        ("model", "Ray 2 Best", "ray-2"),
        ("model", "ray 2 (best)", "ray-2"),
        ("duration", "5", "5s"),
        ("duration", 5, "5s"),
        ("duration", "5 seconds", "5s"),
        ("concepts", ["Dolly Zoom"], [{"key": "dolly_zoom"}]),
    ],
)
def test_5_label_spellings(
    capsys: pytest.CaptureFixture[str], field: str, given: Any, value: Any
) -> None:
    params = {**FOX, field: given}
    code, out, _ = run(capsys, "run", "dream_machine", "--params", json.dumps(params), "--dry-run")
    assert code == 0, out
    assert as_json(out)["request"]["body"][field] == value


def test_5_ambiguity_and_no_regular_expression(capsys: pytest.CaptureFixture[str]) -> None:
    params = {**FOX, "model": "ray", "concepts": ["Z"]}
    code, out, _ = run(capsys, "run", "dream_machine", "--params", json.dumps(params), "--dry-run")
    error = as_json(out)["error"]
    assert code == 2 and "ambiguous" in error["message"]
    assert "Ray 2 (best)" in error["message"] and "Ray 2 Flash" in error["message"]
    assert "^" not in json.dumps(error) and "{2,64}" not in json.dumps(error)


def test_5_filename_with_spaces(capsys: pytest.CaptureFixture[str]) -> None:
    params = {"url": "https://example.com/a.mp4", "filename": "my tiger.mp4"}
    code, out, _ = run(capsys, "run", "download_asset", "--params", json.dumps(params), "--dry-run")
    assert code == 0, out


# 6. --dry-run --each: JSON Lines and a total.
def test_6_dry_run_each_is_json_lines_with_a_total(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text('{"a": "fox"}\n{"a": "cat"}\n', encoding="utf-8")
    params = {"prompt": "A {{item.a}}", "resolution": "1080p"}
    argv = ["--params", json.dumps(params), "--each", str(items), "--dry-run"]
    code, out, _ = run(capsys, "run", "dream_machine", *argv)
    lines = as_lines(out)  # every line is one JSON value
    assert code == 0 and [line.get("line") for line in lines[:2]] == [1, 2]
    total = lines[-1]["total"]
    assert total["items"] == 2 and total["invalid"] == 0
    assert total["estimate_usd"] == pytest.approx(2 * lines[0]["estimate_usd"])


# 7. One output line per input line, positions kept; items checked before the first is sent.
def test_7_lines_positions_and_checked_before_sending(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, serve: Callable[..., CountingServer]
) -> None:
    server = serve(created)
    items = tmp_path / "items.jsonl"
    items.write_text('{"a": "fox"}\n\n{"b": "cat"}\n', encoding="utf-8")
    argv = ["--params", '{"prompt": "A {{item.a}}"}', "--each", str(items), "--base-url"]
    code, out, err = run(capsys, "run", "dream_machine", *argv, server.url)
    lines = as_lines(out)
    assert code == 2 and server.count == 0  # template errors only: exit 2, nothing sent
    assert [line["line"] for line in lines] == [1, 2, 3]
    assert lines[0]["error"]["code"] == "not_run" and lines[1] == {"line": 2, "blank": True}
    assert lines[2]["error"]["code"] == "template_error" and "line 3" in err
    items.write_text('{"a": "fox"}\n\n{"a": "cat"}\n', encoding="utf-8")
    code, out, _ = run(capsys, "run", "dream_machine", *argv[:-1], "--sandbox")
    lines = as_lines(out)
    assert code == 0 and [line["line"] for line in lines] == [1, 2, 3]
    assert lines[1]["blank"] is True and lines[2]["request"]["prompt"] == "A cat"


# 8. --public-url: the callback URL sent is the public one.
def test_8_public_url_is_the_callback_url_sent(
    capsys: pytest.CaptureFixture[str], serve: Callable[..., CountingServer]
) -> None:
    server = serve(created)
    argv = ["--params", json.dumps(FOX), "--base-url", server.url, "--wait", "callback"]
    argv += ["--public-url", "https://hooks.example.com/dn", "--listen", "127.0.0.1:0"]
    code, out, _ = run(capsys, "run", "dream_machine", *argv, "--timeout", "1")
    assert as_json(out)["error"]["code"] == "wait_timeout" and code == 1
    body = json.loads(server.requests[0].body)
    assert body["callback_url"].startswith("https://hooks.example.com/dn/callbacks/")


# 9. --set fills a list field from JSON.
def test_9_set_takes_json_for_a_list(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--params", json.dumps(FOX), "--set", 'concepts=["dolly_zoom"]', "--dry-run"]
    code, out, _ = run(capsys, "run", "dream_machine", *argv)
    assert code == 0 and as_json(out)["request"]["body"]["concepts"] == [{"key": "dolly_zoom"}]


# 10. A mistyped flag: the usage, a suggestion, exit 2; no abbreviations; unknown node hint.
def test_10_mistyped_flags_and_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "run", "dream_machine", "--dryrun")
    assert code == 2 and "did you mean --dry-run?" in as_json(out)["error"]["message"]
    assert err.startswith("usage: dreamnodes run") and "dreamnodes: dreamnodes" not in err
    code, out, _ = run(capsys, "run", "dream_machine", "--param", "{}", "--dry-run")
    assert code == 2 and "did you mean --params?" in as_json(out)["error"]["message"]
    code, out, _ = run(capsys, "run", "dream_machin", "--dry-run")
    assert code == 2 and "did you mean dream_machine?" in as_json(out)["error"]["message"]


# 11. runs retry --max-attempts.
def test_11_runs_retry_takes_max_attempts(
    capsys: pytest.CaptureFixture[str], serve: Callable[..., CountingServer]
) -> None:
    server = serve(status(503))
    argv = ["--params", json.dumps({"generation_id": GEN_ID}), "--base-url", server.url]
    code, _, _ = run(capsys, "run", "get_generation", *argv, "--max-attempts", "1")
    assert code == 1 and server.count == 1
    _, out, _ = run(capsys, "runs", "list", "--json")
    run_id = as_json(out)[0]["id"]
    code, _, _ = run(
        capsys, "runs", "retry", run_id, "--base-url", server.url, "--max-attempts", "2"
    )
    assert code == 1 and server.count == 3


# 12. What the README promises: real types in describe, a price note of the actual estimate.
def test_12_describe_types_and_price_note(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "describe", "dream_machine")
    assert code == 0 and "[any" not in out and "[option" not in out
    assert "[one of, required]" in out and "[URL, optional]" in out
    params = {**FOX, "resolution": "4K", "duration": "9s"}
    _, out, _ = run(capsys, "run", "dream_machine", "--params", json.dumps(params), "--dry-run")
    note = as_json(out)["estimate_note"]
    assert "4k" in note and "9s" in note and "for 5 s at 540p" not in note


# 13. One Video field on every video node; --step names an earlier output; a 404 names the id.
@pytest.mark.parametrize(
    ("node", "extra", "where"),
    [
        ("extend_video", {}, lambda r: r["body"]["keyframes"]["frame0"]["id"]),
        ("upscale_video", {}, lambda r: r["url"].split("/")[-2]),
        ("add_audio", {}, lambda r: r["url"].split("/")[-2]),
        ("modify_video", {}, lambda r: r["body"]["media"]["url"]),
        ("reframe_video", {"aspect_ratio": "1:1"}, lambda r: r["body"]["media"]["url"]),
    ],
)
def test_13_video_field_and_step(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    node: str,
    extra: dict[str, Any],
    where: Callable[[dict[str, Any]], str],
) -> None:
    made = tmp_path / "made.json"
    url = "https://cdn.example.com/made.mp4"
    made.write_text(
        json.dumps({"id": GEN_ID, "state": "completed", "assets": {"video": url}}),
        encoding="utf-8",
    )
    params = {"video": "{{steps.make}}", **extra}
    argv = ["--params", json.dumps(params), "--step", f"make=@{made}", "--dry-run"]
    code, out, _ = run(capsys, "run", node, *argv)
    assert code == 0, out
    assert where(as_json(out)["request"]) in (GEN_ID, url)


def test_13_not_found_names_the_id(
    capsys: pytest.CaptureFixture[str], serve: Callable[..., CountingServer]
) -> None:
    server = serve(status(404))
    argv = ["--params", json.dumps({"generation_id": GEN_ID}), "--base-url", server.url]
    code, out, _ = run(capsys, "run", "get_generation", *argv)
    error = as_json(out)["error"]
    assert code == 1 and error["code"] == "not_found" and GEN_ID in error["message"]
