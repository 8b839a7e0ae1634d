"""`dreamnodes runs list|show|retry` through argparse and runs_command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from dreamnodes.cli.runs import add_runs_parser, runs_command
from dreamnodes.runlog.store import RunRecord, RunStore


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dreamnodes")
    add_runs_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def no_rerun(record: RunRecord) -> int:
    raise AssertionError(f"rerun must not be called for {record.id}")


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "runs.sqlite3")


@pytest.fixture
def runs(path: str) -> dict[str, str]:
    store = RunStore(path)
    failed = store.start(
        node="dream_machine",
        provider="luma",
        params={"prompt": "a fox"},
        context={"item": {"p": "a fox"}, "index": 3},
        options={"wait": "poll", "max_attempts": 2},
    )
    store.finish(failed, error={"code": "network_error", "message": "connection dropped"})
    done = store.start(
        node="get_generation", provider="luma", params={"id": "g1"}, context=None, options={}
    )
    store.set_generation(done, "g1")
    store.finish(done, output={"id": "g1", "state": "completed"})
    running = store.start(
        node="dream_machine", provider="luma", params={"prompt": "x"}, context=None, options={}
    )
    store.close()
    return {"failed": failed, "done": done, "running": running}


def test_list_json_gives_each_run_newest_first(
    path: str, runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert runs_command(parse("runs", "list", "--json", "--store", path), no_rerun) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in listed] == [runs["running"], runs["done"], runs["failed"]]
    assert [r["status"] for r in listed] == ["running", "succeeded", "failed"]
    assert [r["node"] for r in listed] == ["dream_machine", "get_generation", "dream_machine"]
    assert all(r["started_at"] for r in listed)
    assert listed[2]["error_code"] == "network_error"
    assert listed[1]["generation_id"] == "g1"


def test_list_filters_and_limits(
    path: str, runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    runs_command(parse("runs", "list", "--json", "--status", "failed", "--store", path), no_rerun)
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [runs["failed"]]
    runs_command(
        parse("runs", "list", "--json", "--node", "get_generation", "--store", path), no_rerun
    )
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [runs["done"]]
    runs_command(parse("runs", "list", "--json", "--limit", "1", "--store", path), no_rerun)
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [runs["running"]]


def test_list_prints_a_table(
    path: str, runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert runs_command(parse("runs", "list", "--store", path), no_rerun) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "ID",
        "NODE",
        "STATUS",
        "STARTED",
        "DURATION",
        "GENERATION",
        "ERROR",
    ]
    assert len(lines) == 4
    failed_line = next(line for line in lines if runs["failed"] in line)
    assert "failed" in failed_line and "network_error" in failed_line
    assert "g1" in next(line for line in lines if runs["done"] in line)


def test_list_of_an_empty_store_says_so_on_stderr(
    path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runs_command(parse("runs", "list", "--store", path), no_rerun) == 0
    out, err = capsys.readouterr()
    assert out == "" and "no runs" in err
    assert runs_command(parse("runs", "list", "--json", "--store", path), no_rerun) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_show_prints_the_full_record(
    path: str, runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert runs_command(parse("runs", "show", runs["failed"], "--store", path), no_rerun) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == runs["failed"]
    assert shown["params"] == {"prompt": "a fox"}
    assert shown["context"] == {"item": {"p": "a fox"}, "index": 3}
    assert shown["options"] == {"wait": "poll", "max_attempts": 2}
    assert shown["error"] == {"code": "network_error", "message": "connection dropped"}
    assert shown["attempts"] == []


def test_an_unknown_id_is_a_not_found_error(
    path: str, runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    for action in ("show", "retry"):
        assert runs_command(parse("runs", action, "r_missing", "--store", path), no_rerun) == 1
        out, err = capsys.readouterr()
        assert json.loads(out)["error"]["code"] == "not_found"
        assert json.loads(out)["error"]["field"] == "id"
        assert "r_missing" in err


def test_retry_reruns_a_failed_run_with_its_record(
    path: str, runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[RunRecord] = []

    def rerun(record: RunRecord) -> int:
        seen.append(record)
        return 0

    assert runs_command(parse("runs", "retry", runs["failed"], "--store", path), rerun) == 0
    assert len(seen) == 1
    assert seen[0].id == runs["failed"]
    assert seen[0].params == {"prompt": "a fox"}
    assert seen[0].options == {"wait": "poll", "max_attempts": 2}
    # rerun's exit code is passed through
    assert runs_command(parse("runs", "retry", runs["failed"], "--store", path), lambda r: 1) == 1


@pytest.mark.parametrize(("which", "word"), [("done", "succeeded"), ("running", "running")])
def test_retry_refuses_a_run_that_did_not_fail(
    path: str,
    runs: dict[str, str],
    which: str,
    word: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert runs_command(parse("runs", "retry", runs[which], "--store", path), no_rerun) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["error"]["code"] == "invalid_input"
    assert (
        runs[which] in err and word in err and "only a failed, interrupted or abandoned run" in err
    )


def test_a_run_whose_process_died_is_abandoned_at_once_and_can_be_retried(
    path: str, runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    import socket
    import sqlite3
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    with sqlite3.connect(path) as db:  # its process was killed a moment ago
        db.execute(
            "UPDATE runs SET owner = ? WHERE id = ?",
            (f"{socket.gethostname()}:{dead.stdout.strip()}:-", runs["running"]),
        )
    assert runs_command(parse("runs", "list", "--store", path), no_rerun) == 0
    listed = capsys.readouterr().out
    assert f"{runs['running']}" in listed and "abandoned" in listed
    seen: list[RunRecord] = []
    assert (
        runs_command(
            parse("runs", "retry", runs["running"], "--store", path), lambda r: seen.append(r) or 0
        )
        == 0
    )
    assert [r.id for r in seen] == [runs["running"]]


def test_the_store_comes_from_the_environment_without_store_flag(
    path: str,
    runs: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DREAMNODES_STORE", path)
    assert runs_command(parse("runs", "list", "--json"), no_rerun) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_bad_arguments_are_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        parse("runs", "list", "--status", "exploded")
    with pytest.raises(SystemExit):
        parse("runs", "list", "--limit", "0")
    with pytest.raises(SystemExit):
        parse("runs")
