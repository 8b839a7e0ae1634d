"""Retries as the command line and the Runner do them, against a real loopback server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest
from fakeserver import Request, Response, json_response

from dreamnodes.cli import main
from dreamnodes.execution.runner import Runner
from dreamnodes.sandbox import Sandbox, SandboxConfig

from .conftest import GEN_ID, GENERATION, KEY, CountingServer, dropped, status

GET = ["run", "get_generation", "--params", json.dumps({"generation_id": GEN_ID})]
CREATE = ["run", "dream_machine", "--params", json.dumps({"model": "ray-2", "prompt": "a fox"})]
QUICK = ["--time-scale", "1000"]  # a rehearsal clock: retry delays / 1000, attempt counts unchanged


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("attempts", [1, 2])
def test_cli_500_makes_exactly_max_attempts_requests(
    attempts: int, serve: Callable[..., CountingServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """The true CLI with its real 1 s policy (kept to 1-2 attempts so it stays quick)."""
    server = serve(status(500))
    code = main([*GET, "--base-url", server.url, "--max-attempts", str(attempts)])
    captured = capsys.readouterr()
    assert code == 1
    error = json.loads(captured.out)["error"]
    assert error["retryable"] is True
    assert error["status"] == 500
    assert [a["status"] for a in error["attempts"]] == [500] * attempts
    assert server.count == attempts
    assert "Traceback" not in captured.err


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("attempts", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("argv", [GET, CREATE], ids=["get", "create"])
def test_500_attempts_1_to_5(
    attempts: int,
    argv: list[str],
    serve: Callable[..., CountingServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = serve(status(500))
    code = main([*argv, *QUICK, "--base-url", server.url, "--max-attempts", str(attempts)])
    error = json.loads(capsys.readouterr().out)["error"]
    assert code == 1
    assert error["retryable"] is True
    assert len(error["attempts"]) == attempts
    assert server.count == attempts


@pytest.mark.usefixtures("env")
def test_default_is_five_attempts(
    serve: Callable[..., CountingServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(status(503))
    assert main([*GET, *QUICK, "--base-url", server.url]) == 1
    assert server.count == 5
    assert len(json.loads(capsys.readouterr().out)["error"]["attempts"]) == 5


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (400, "invalid_input"),
        (401, "auth_failed"),
        (403, "auth_failed"),
        (404, "not_found"),
        (422, "invalid_input"),
        (402, "insufficient_credits"),
    ],
)
@pytest.mark.parametrize("argv", [GET, CREATE], ids=["get", "create"])
def test_no_retry_on_4xx(
    code: int,
    expected: str,
    argv: list[str],
    serve: Callable[..., CountingServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = serve(status(code))
    exit_code = 2 if expected == "invalid_input" else 1  # the service refusing input is bad input
    assert main([*argv, *QUICK, "--base-url", server.url, "--max-attempts", "5"]) == exit_code
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == expected
    assert error["status"] == code
    assert error["retryable"] is False
    assert server.count == 1


@pytest.mark.usefixtures("env")
def test_429_retry_after_is_obeyed(
    serve: Callable[..., CountingServer], capsys: pytest.CaptureFixture[str]
) -> None:
    def answer(req: Request, n: int) -> Response:
        if n <= 2:
            return json_response(429, b'{"detail": "slow down"}', {"retry-after": "0.3"})
        return json_response(200, json.dumps(GENERATION).encode())

    server = serve(answer)
    assert main([*GET, *QUICK, "--base-url", server.url]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == GEN_ID
    assert server.count == 3
    gaps = [b - a for a, b in zip(server.times, server.times[1:], strict=False)]
    assert all(gap >= 0.28 for gap in gaps), gaps  # the policy alone would wait ~1 ms
    assert all(gap < 1.5 for gap in gaps), gaps


@pytest.mark.usefixtures("env")
def test_dropped_connections_are_retried_for_reads(
    serve: Callable[..., CountingServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(dropped)
    assert main([*GET, *QUICK, "--base-url", server.url, "--max-attempts", "3"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "network_error"
    assert server.count == 3


def test_runner_policy_knob_gives_exact_counts(serve: Callable[..., CountingServer]) -> None:
    """The Python API's retry policy: first_delay small, attempts exact, time bounded."""
    server = serve(status(502))

    async def go() -> None:
        async with Runner(
            api_key=KEY, base_url=server.url, retry={"max_attempts": 4, "first_delay": 0.01}
        ) as runner:
            with pytest.raises(Exception) as caught:
                await runner.run("get_generation", {"generation_id": GEN_ID})
            assert len(caught.value.attempts) == 4  # type: ignore[attr-defined]

    began = time.monotonic()
    asyncio.run(go())
    assert server.count == 4
    assert time.monotonic() - began < 2.0


def test_lost_create_answer_gives_one_generation() -> None:
    """Every create's answer is dropped after the generation is made: the run finds it."""
    with Sandbox(SandboxConfig(port=0, fault_rate_drop_after=1.0, render=False)) as sb:

        async def go() -> dict[str, object]:
            async with Runner(
                api_key="sandbox-key",
                base_url=sb.luma_url,
                retry={"max_attempts": 5, "first_delay": 0.01},
            ) as runner:
                return await runner.run(
                    "dream_machine", {"model": "ray-2", "prompt": "a lost answer"}
                )

        output = asyncio.run(go())
        generations = sb.generations()
        log = sb.request_log()
    assert len(generations) == 1
    assert output["id"] == generations[0]["id"]
    creates = [entry for entry in log if entry[0] == "POST"]
    assert creates == [("POST", "/dream-machine/v1/generations/video", "dropped")]
