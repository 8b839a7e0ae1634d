"""The API key never shows; --dry-run sends nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from dreamnodes.cli import main

from .conftest import GEN_ID, KEY, CountingServer, created, status


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("code", [401, 500])
@pytest.mark.parametrize("echo", [False, True], ids=["plain", "echoing"])
def test_key_never_printed(
    code: int, echo: bool, serve: Callable[..., CountingServer], capsys: pytest.CaptureFixture[str]
) -> None:
    def answer(req: object, n: int) -> object:
        if echo:  # a careless server that repeats the Authorization header in its error
            auth = req.headers.get("authorization", "")  # type: ignore[attr-defined]
            from fakeserver import json_response

            return json_response(code, json.dumps({"detail": f"bad token {auth}"}).encode())
        return status(code)(req, n)  # type: ignore[arg-type]

    server = serve(answer)
    main(
        [
            "run",
            "dream_machine",
            "--base-url",
            server.url,
            "--max-attempts",
            "2",
            "--time-scale",
            "1000",
            "--params",
            json.dumps({"model": "ray-2", "prompt": "a fox"}),
        ]
    )
    captured = capsys.readouterr()
    assert server.count >= 1
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it was sent...
    assert KEY not in captured.out and KEY not in captured.err  # ...and never shown
    assert KEY[:12] not in captured.out + captured.err
    assert json.loads(captured.out)["error"]["status"] == code


def test_key_never_printed_by_a_real_process(
    serve: Callable[..., CountingServer], tmp_path: object
) -> None:
    server = serve(status(401))
    env = {**os.environ, "LUMA_API_KEY": KEY, "DREAMNODES_STORE": f"{tmp_path}/runs.sqlite3"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dreamnodes.cli",
            "run",
            "get_generation",
            "--base-url",
            server.url,
            "--set",
            f"generation_id={GEN_ID}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["code"] == "auth_failed"
    assert KEY not in done.stdout + done.stderr
    assert server.count == 1


@pytest.mark.usefixtures("env")
def test_dry_run_prints_request_and_estimate_and_sends_nothing(
    serve: Callable[..., CountingServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(created)
    assert (
        main(
            [
                "run",
                "dream_machine",
                "--dry-run",
                "--base-url",
                server.url,
                "--params",
                json.dumps(
                    {
                        "model": "Ray 2 (best)",
                        "prompt": "{{t.p}}",
                        "loop": "No",
                        "resolution": "1080p",
                    }
                ),
                "--context",
                json.dumps({"t": {"p": "A tiger walking in snow"}}),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert server.count == 0
    request = out["request"]
    assert request["method"] == "POST"
    assert request["url"].endswith("/generations/video")
    assert request["body"]["prompt"] == "A tiger walking in snow"
    assert request["body"]["model"] == "ray-2"
    assert request["body"]["loop"] is False
    assert isinstance(out["estimate_usd"], int | float) and out["estimate_usd"] > 0
    assert KEY not in json.dumps(out)
    assert "authorization" not in json.dumps(out).lower()


@pytest.mark.usefixtures("env")
def test_dry_run_with_bad_input_still_exits_2(
    serve: Callable[..., CountingServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(created)
    assert (
        main(
            [
                "run",
                "dream_machine",
                "--dry-run",
                "--base-url",
                server.url,
                "--params",
                json.dumps({"model": "Ray 7", "prompt": "a fox"}),
            ]
        )
        == 2
    )
    assert json.loads(capsys.readouterr().out)["error"]["field"] == "model"
    assert server.count == 0
