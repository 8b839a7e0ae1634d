"""The run log on the command line: runs list --json, runs show, runs retry after a drop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fakeserver import DROP, Drop, FakeServer, Request, Response

from dreamnodes.sandbox import Sandbox, SandboxConfig

from .conftest import KEY, RunCli

SCALE = 200.0


class FlakyProxy:
    """Drops every connection while `down`; otherwise forwards to the sandbox."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.down = True
        self.dropped = 0
        self.server = FakeServer(self.handle)

    async def handle(self, req: Request) -> Response | Drop:
        if self.down:
            self.dropped += 1
            return DROP
        headers = {k: v for k, v in req.headers.items() if k in ("authorization", "content-type")}
        async with httpx.AsyncClient() as client:
            answer = await client.request(
                req.method,
                self.target + req.path,
                params=req.query,
                headers=headers,
                content=req.body,
            )
        keep = {"content-type": answer.headers.get("content-type", "application/json")}
        return Response(answer.content, answer.status_code, keep)


@pytest.fixture
def proxied() -> Iterator[tuple[Sandbox, FlakyProxy]]:
    with Sandbox(SandboxConfig(port=0, time_scale=SCALE, render=False)) as sb:
        proxy = FlakyProxy(sb.base_url)
        proxy.server.start()
        try:
            yield sb, proxy
        finally:
            proxy.server.stop()


def test_runs_list_show_and_retry_after_network_fault(
    run_cli: RunCli, proxied: tuple[Sandbox, FlakyProxy], tmp_path: Path
) -> None:
    sb, proxy = proxied
    store = str(tmp_path / "runs.sqlite3")
    base = proxy.server.base_url + "/dream-machine/v1"
    failed = run_cli(
        "run",
        "dream_machine",
        "--params",
        '{"prompt": "a lighthouse at dusk", "model": "ray-2"}',
        "--wait",
        "--max-attempts",
        "2",
        "--base-url",
        base,
        "--store",
        store,
        "--time-scale",
        str(SCALE),
    )
    assert failed.code == 1
    # The create's answer and the lookup were both lost: its outcome is unknown, not resent.
    assert failed.lines[0]["error"]["code"] == "unknown_outcome"
    assert proxy.dropped >= 2 and sb.generations() == []

    listed = run_cli("runs", "list", "--json", "--store", store)
    assert listed.code == 0
    (run,) = listed.lines[0]
    assert run["node"] == "dream_machine" and run["status"] == "failed"
    assert run["error_code"] == "unknown_outcome"

    shown = run_cli("runs", "show", run["id"], "--store", store)
    record = shown.lines[0]
    assert shown.code == 0 and record["id"] == run["id"]
    assert record["params"]["prompt"] == "a lighthouse at dusk"
    assert record["request"]["url"].startswith(base)
    assert record["attempts"] and all(a["status"] is None for a in record["attempts"])
    assert KEY not in str(record)
    assert record["options"]["time_scale"] == SCALE  # a rehearsal is retried as a rehearsal

    proxy.down = False
    # The key goes only where this command says: the proxy is not Luma's own API.
    refused = run_cli("runs", "retry", run["id"], "--store", store)
    assert refused.code == 2 and refused.lines[0]["error"]["field"] == "base_url"
    retried = run_cli("runs", "retry", run["id"], "--store", store, "--base-url", base)
    assert retried.code == 0, retried.err
    output = retried.lines[0]
    assert output["state"] == "completed"
    assert [g["id"] for g in sb.generations()] == [output["id"]]

    after = run_cli("runs", "list", "--json", "--store", store).lines[0]
    assert [r["status"] for r in after] == ["succeeded", "failed"]
    assert after[0]["generation_id"] == output["id"]
    # Only a failed run can be retried.
    again = run_cli("runs", "retry", after[0]["id"], "--store", store)
    assert again.code == 2 and again.lines[0]["error"]["field"] == "id"


def test_retrying_a_run_that_timed_out_waiting_picks_up_its_generation(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUMA_API_KEY", KEY)
    store = str(tmp_path / "runs.sqlite3")
    with Sandbox(SandboxConfig(port=0, render=False)) as sb:
        timed_out = run_cli(
            "run",
            "dream_machine",
            "--params",
            '{"prompt": "a slow sunrise", "model": "ray-2"}',
            "--wait",
            "--timeout",
            "0.5",
            "--base-url",
            sb.luma_url,
            "--store",
            store,
        )
        error = timed_out.lines[0]["error"]
        assert timed_out.code == 1 and error["code"] == "wait_timeout"
        (run,) = run_cli("runs", "list", "--json", "--store", store).lines[0]
        assert run["generation_id"] == error["generation_id"]

        retried = run_cli(
            "runs",
            "retry",
            run["id"],
            "--store",
            store,
            "--timeout",
            "60",
            "--base-url",
            sb.luma_url,
        )
        assert retried.code == 0, retried.err
        assert retried.lines[0]["id"] == error["generation_id"]
        assert retried.lines[0]["state"] == "completed"
        assert len(sb.generations()) == 1  # waited for, not paid for again
