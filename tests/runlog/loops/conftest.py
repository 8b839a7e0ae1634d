"""Loops end to end: the `dreamnodes` CLI in process against the in-process sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dreamnodes.api.scheduler import Scheduler
from dreamnodes.cli import entry as cli

KEY = "loops-test-key-0123456789"
FOX = '{"prompt": "{{item.p}}", "model": "ray-2"}'


@dataclass
class CliResult:
    code: int
    lines: list[Any]  # stdout, one JSON value per line
    err: str


RunCli = Callable[..., CliResult]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("LUMA_API_KEY", KEY)
    monkeypatch.setenv("DREAMNODES_STORE", str(tmp_path / "default-store.sqlite3"))
    # Each test starts with fresh schedulers (they are per key and base URL, per process).
    Scheduler._registry.clear()
    yield
    Scheduler._registry.clear()


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        try:
            lines = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
        except json.JSONDecodeError:  # one indented JSON document (a single run or an error)
            lines = [json.loads(captured.out)]
        return CliResult(code, lines, captured.err)

    return run


def write_items(path: Path, items: list[Any]) -> str:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return str(path)


def fox_items(count: int, tag: str = "fox") -> list[dict[str, str]]:
    return [{"p": f"a red {tag} number {i} runs through the snow"} for i in range(count)]
