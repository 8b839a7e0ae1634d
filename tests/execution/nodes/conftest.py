"""One sandbox for the whole folder, plus a video and an image generated once through the nodes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dreamnodes.sandbox import Sandbox, SandboxConfig

from .helpers import run_node


@pytest.fixture(scope="package")
def sb() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(port=0, time_scale=20)) as sandbox:
        yield sandbox


@pytest.fixture(scope="package")
def video(sb: Sandbox) -> dict[str, Any]:
    """A completed Ray 2 Flash generation (the source for upscale, audio, modify, reframe)."""
    return run_node(
        sb,
        "dream_machine",
        {"model": "ray-flash-2", "prompt": "A red ball rolls", "resolution": "540p"},
        wait="poll",
    )


@pytest.fixture(scope="package")
def image(sb: Sandbox) -> dict[str, Any]:
    """A completed Photon Flash image."""
    return run_node(
        sb, "generate_image", {"model": "photon-flash-1", "prompt": "A blue square"}, wait="poll"
    )
