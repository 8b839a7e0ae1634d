"""`--time-scale` is a rehearsal: with `--sandbox` the sandbox's generations run on the same
fast clock as the limits and the polls, for `run` and for `runs retry` of a run recorded so.
A sandbox video dreams 2.5 s on the real clock: the whole command takes less than that."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from dreamnodes.api.scheduler import Scheduler
from dreamnodes.cli import main

FOX = json.dumps({"prompt": "A fox in snow", "model": "ray-2"})
UNSCALED = 2.5  # seconds a sandbox video is queued and dreams (SandboxConfig's defaults)


@pytest.fixture(autouse=True)
def _fresh(env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    Scheduler._registry.clear()
    yield
    Scheduler._registry.clear()


def _timed(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[float, dict[str, object]]:
    started = time.monotonic()
    code = main(argv)
    took = time.monotonic() - started
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    return took, out


def test_run_with_a_sandbox_on_the_rehearsals_clock(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "dream_machine", "--sandbox", "--wait", "--time-scale", "40", "--params", FOX]
    took, out = _timed(capsys, argv)
    assert out["state"] == "completed"
    assert took < UNSCALED, f"{took:.2f} s: the sandbox was not on the rehearsal's clock"


def test_a_retry_in_a_sandbox_keeps_the_recorded_clock(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LUMA_API_KEY")  # the first run fails: no key
    argv = ["run", "dream_machine", "--wait", "--time-scale", "40", "--params", FOX]
    assert main(argv) != 0
    capsys.readouterr()
    assert main(["runs", "list", "--json"]) == 0
    failed = json.loads(capsys.readouterr().out)[0]
    assert failed["status"] == "failed"
    took, out = _timed(capsys, ["runs", "retry", failed["id"], "--sandbox"])
    assert out["state"] == "completed"
    assert took < UNSCALED, f"{took:.2f} s: the retry's sandbox was not on the run's clock"
