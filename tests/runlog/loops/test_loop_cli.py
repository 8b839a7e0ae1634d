"""`--each` on the command line: order, per-item errors, --stop-on-error, exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dreamnodes.sandbox import Sandbox, SandboxConfig

from .conftest import FOX, RunCli, write_items

SCALE = 200.0


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(port=0, time_scale=SCALE, render=False)) as sb:
        yield sb


def _argv(sb: Sandbox, items: str, store: Path, *extra: str) -> tuple[str, ...]:
    return (
        "run",
        "dream_machine",
        "--params",
        FOX,
        "--each",
        items,
        "--wait",
        "--store",
        str(store),
        "--base-url",
        sb.luma_url,
        "--time-scale",
        str(SCALE),
        *extra,
    )


def test_every_item_succeeds_exit_zero(run_cli: RunCli, sandbox: Sandbox, tmp_path: Path) -> None:
    items = [{"p": f"all good {i}"} for i in range(5)]
    path = write_items(tmp_path / "items.jsonl", items)
    result = run_cli(*_argv(sandbox, path, tmp_path / "s.db", "--concurrency", "3"))
    assert result.code == 0
    assert [line["request"]["prompt"] for line in result.lines] == [i["p"] for i in items]
    assert all(line["state"] == "completed" for line in result.lines)


def test_template_error_in_one_line_refuses_the_loop_before_anything_is_sent(
    run_cli: RunCli, sandbox: Sandbox, tmp_path: Path
) -> None:
    items = [{"p": "first cat"}, {"q": "no p here"}, {"p": "third cat"}]
    path = write_items(tmp_path / "items.jsonl", items)
    before = len(sandbox.generations())
    result = run_cli(*_argv(sandbox, path, tmp_path / "s.db"))
    assert result.code == 2
    assert [line["line"] for line in result.lines] == [1, 2, 3]
    error = result.lines[1]["error"]
    assert error["code"] == "template_error"
    assert "item.p" in error["message"] and "q" in error["message"]  # names the keys there
    for line in (result.lines[0], result.lines[2]):
        assert line["error"]["code"] == "not_run" and "line 2" in line["error"]["message"]
    assert len(sandbox.generations()) == before
    assert "1 of 3 items invalid (line 2); nothing was sent" in result.err


def test_stop_on_error_stops_new_items(run_cli: RunCli, sandbox: Sandbox, tmp_path: Path) -> None:
    # The sandbox's moderation fails prompts that mention "blacklisted".
    items = [{"p": "one dog"}, {"p": "a blacklisted dog"}, {"p": "three dog"}, {"p": "four"}]
    path = write_items(tmp_path / "items.jsonl", items)
    before = len(sandbox.generations())
    result = run_cli(
        *_argv(sandbox, path, tmp_path / "s.db", "--concurrency", "1", "--stop-on-error")
    )
    assert result.code == 1
    assert len(result.lines) == 4
    assert result.lines[0]["state"] == "completed"
    assert result.lines[1]["error"]["code"] == "generation_failed"
    for line in result.lines[2:]:
        assert line["error"]["code"] == "not_run"
        assert line["error"]["message"] == "not run: stopped after line 2 failed"
        assert line["error"]["retryable"] is False
    assert len(sandbox.generations()) == before + 2


def test_a_failed_generation_is_an_error_line(
    run_cli: RunCli, sandbox: Sandbox, tmp_path: Path
) -> None:
    # The sandbox's moderation fails prompts that mention "blacklisted".
    items = [{"p": "a blacklisted thing"}, {"p": "a fine thing"}]
    path = write_items(tmp_path / "items.jsonl", items)
    result = run_cli(*_argv(sandbox, path, tmp_path / "s.db"))
    assert result.code == 1
    assert result.lines[0]["error"]["code"] == "generation_failed"
    assert result.lines[0]["error"]["generation_id"]
    assert result.lines[1]["state"] == "completed"


def test_bad_items_file_is_exit_two(run_cli: RunCli, sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"p": "ok"}\nnot json\n', encoding="utf-8")
    before = len(sandbox.generations())
    result = run_cli(*_argv(sandbox, str(path), tmp_path / "s.db"))
    assert result.code == 2
    assert result.lines[0]["error"]["field"] == "each"
    assert "line 2" in result.lines[0]["error"]["message"]
    assert len(sandbox.generations()) == before
