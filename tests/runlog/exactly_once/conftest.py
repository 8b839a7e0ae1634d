"""A fake Luma in its own process, and the `dreamnodes` command line run as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

KEY = "luma-REAL-key-4e7a9c2b5d8f1a3c6e9b"
HERE = Path(__file__).parent


@dataclass
class Fake:
    url: str  # the server's root
    process: subprocess.Popen[str]

    @property
    def base(self) -> str:
        return self.url + "/dream-machine/v1"

    def control(self, **settings: Any) -> None:
        httpx.post(self.url + "/_control", json=settings).raise_for_status()

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(self.url + "/_stats").json()
        return answer


def start_fake(port: int = 0) -> Fake:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "fake_luma.py"), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("fake: "), line
    fake = Fake(line.split(" ", 1)[1].strip(), process)
    for _ in range(100):
        try:
            fake.stats()
            return fake
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the fake Luma did not start")


@pytest.fixture
def fake() -> Iterator[Fake]:
    server = start_fake()
    yield server
    server.process.kill()
    server.process.wait()


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "log" / "runs.sqlite3")


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("DREAMNODES_")}
    out.update({"LUMA_API_KEY": KEY, "PYTHONUNBUFFERED": "1"}, **extra)
    return out


def start(*argv: str, **extra: str) -> subprocess.Popen[str]:
    """`dreamnodes ARGV` as its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "dreamnodes.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(**extra),
    )


@dataclass
class Done:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def finish(process: subprocess.Popen[str], timeout: float = 120) -> Done:
    out, err = process.communicate(timeout=timeout)
    return Done(process.returncode, out, err)


def dn(*argv: str, timeout: float = 120, **extra: str) -> Done:
    return finish(start(*argv, **extra), timeout)


def kill(process: subprocess.Popen[str], how: int = signal.SIGKILL) -> Done:
    process.send_signal(how)
    return finish(process, 30)


def until(check: Any, timeout: float = 30.0, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(every)


def items_file(tmp_path: Path, items: list[Any], name: str = "items.jsonl") -> str:
    path = tmp_path / name
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return str(path)
