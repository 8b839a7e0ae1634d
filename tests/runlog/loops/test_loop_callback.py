"""`--wait callback`: a loop completes on the callbacks, each confirmed by exactly one GET."""

from __future__ import annotations

from pathlib import Path

from dreamnodes.sandbox import Sandbox, SandboxConfig

from .conftest import FOX, RunCli, fox_items, write_items

SCALE = 100.0


def _gets(sb: Sandbox) -> int:
    return sum(1 for method, _, _ in sb.request_log() if method == "GET")


def test_callback_loop_completes_with_one_confirming_get_per_generation(
    run_cli: RunCli, tmp_path: Path
) -> None:
    counts = {}
    for wait in ("poll", "callback"):
        items = write_items(tmp_path / f"{wait}.jsonl", fox_items(20, tag=wait))
        with Sandbox(SandboxConfig(port=0, time_scale=SCALE, render=False)) as sb:
            result = run_cli(
                "run",
                "dream_machine",
                "--params",
                FOX,
                "--each",
                items,
                "--wait",
                wait,
                "--concurrency",
                "20",
                "--no-store",
                "--base-url",
                sb.luma_url,
                "--time-scale",
                str(SCALE),
            )
            assert result.code == 0, result.err
            assert [line["state"] for line in result.lines] == ["completed"] * 20
            assert len(sb.generations()) == 20
            counts[wait] = _gets(sb)
            if wait == "callback":
                delivered = [status for _, status in sb.callback_log()]
                assert delivered.count(200) >= 20
    # A callback is a hint: each generation is confirmed with one GET, never more.
    assert counts["poll"] >= 20
    assert counts["callback"] == 20
