"""A node's provider without --provider: Luma's Dream Machine where offered, else its own."""

from __future__ import annotations

import json

import pytest

from dreamnodes.cli import main


def dry_run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["run", *argv, "--dry-run"]) == 0
    answer: dict[str, object] = json.loads(capsys.readouterr().out)
    return answer


def test_an_agents_only_node_needs_no_provider_flag(capsys: pytest.CaptureFixture[str]) -> None:
    out = dry_run(capsys, "ray_video", "--params", '{"prompt": "a heron"}')
    assert out["provider"] == "luma_agents"


def test_a_node_luma_offers_stays_on_luma_unless_told(capsys: pytest.CaptureFixture[str]) -> None:
    params = '{"prompt": "a heron", "model": "ray-2"}'
    assert dry_run(capsys, "dream_machine", "--params", params)["provider"] == "luma"
    pixazo = (
        '{"prompt": "a heron", "model": "ray-flash-2", "start_image_url": "https://x.test/a.jpg"}'
    )
    told = dry_run(capsys, "dream_machine", "--params", pixazo, "--provider", "pixazo")
    assert told["provider"] == "pixazo"
