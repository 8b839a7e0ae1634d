"""100 items through `--each` against a sandbox that injects faults and enforces the limits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from dreamnodes.sandbox import Sandbox, SandboxConfig

from .conftest import FOX, RunCli, fox_items, write_items

SCALE = 100.0


def _faulty() -> SandboxConfig:
    # 20 % of requests get a fault, spread over 429, 500/503, drops and truncated bodies.
    return SandboxConfig(
        port=0,
        time_scale=SCALE,
        render=False,
        fault_seed=11,
        fault_rate_429=0.04,
        fault_rate_5xx=0.04,
        fault_rate_drop_before=0.04,
        fault_rate_drop_after=0.04,
        fault_rate_truncated=0.04,
    )


def test_hundred_items_with_faults_one_generation_each_and_resumable(
    run_cli: RunCli, tmp_path: Path
) -> None:
    items = fox_items(100)
    path = write_items(tmp_path / "items.jsonl", items)
    store = str(tmp_path / "runs.sqlite3")
    with Sandbox(_faulty()) as sb:
        argv = (
            "run",
            "dream_machine",
            "--params",
            FOX,
            "--each",
            path,
            "--wait",
            "--concurrency",
            "24",
            "--store",
            store,
            "--base-url",
            sb.luma_url,
            "--time-scale",
            str(SCALE),
        )
        first = run_cli(*argv)
        log = sb.request_log()
        faults = Counter(str(status) for _, _, status in log)
        # The faults really happened, creates included.
        assert faults["dropped"] > 0 and faults["429"] > 0 and faults["500"] + faults["503"] > 0
        assert any("truncated" in str(s) for _, _, s in log)
        assert len(first.lines) == 100
        for item, line in zip(items, first.lines, strict=True):
            if "error" in line:
                assert line["error"]["code"] and line["error"]["message"]
            else:
                assert line["state"] == "completed"
                assert line["request"]["prompt"] == item["p"]  # input order kept
        ok = [line for line in first.lines if "error" not in line]
        assert first.code == (0 if len(ok) == 100 else 1)
        assert len(ok) >= 95
        generations = sb.generations()
        prompts = Counter(g["request"]["prompt"] for g in generations)
        # Never billed twice, nothing lost: one generation per item that has an output.
        assert max(prompts.values()) == 1
        assert {line["id"] for line in ok} <= {g["id"] for g in generations}
        assert len(generations) == 100

        second = run_cli(*argv)
        assert len(sb.generations()) == 100  # nothing created again
        if len(ok) == 100:
            assert not [e for e in sb.request_log()[len(log) :] if e[0] == "POST"]
        for before, after in zip(first.lines, second.lines, strict=True):
            if "error" not in before:
                assert "error" not in after, after["error"]
                assert after["id"] == before["id"]
        assert all(line.get("state") == "completed" for line in second.lines)
        assert second.code == 0
