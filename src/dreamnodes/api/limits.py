"""The per-API-key scheduler that keeps creates within the account's limits.

Luma limits each account per model family (the Dream Machine API: video and image; the Luma
Agents API: one "agents" family for every create, 30 a minute and 10 unfinished by default):
a number of generations running at once and a number of create requests in any sliding
window of a minute. One `Scheduler` per (API key, base URL) holds the count of both, makes
creates wait their turn (first come, first served) and lets the next one go the moment a
slot frees up, so a loop runs at the limits and not below them.

The scheduler is per process and per event loop: several concurrent tasks of one loop share
it; separate processes with the same key do not know of each other (they learn of each
other only through the 429s the service answers, see `Scheduler.rate_limited`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from dreamnodes.catalog.requests import ApiRequest
from dreamnodes.errors import DreamError

VIDEO = "video"
IMAGE = "image"
AGENTS = "agents"  # the Luma Agents API: one RPM window and one concurrency cap per API client
FAMILIES: tuple[str, ...] = (VIDEO, IMAGE, AGENTS)
DURATIONS_KEPT = 20  # generations' durations a limiter remembers, per family (see `saturated`)

_VIDEO_TYPES = frozenset({"video", "upscale_video", "add_audio", "modify_video", "reframe_video"})
_IMAGE_TYPES = frozenset({"image", "reframe_image"})


@dataclass(frozen=True)
class Limits:
    """An account's limits per family (Luma's Build tier by default)."""

    video_concurrent: int = 10
    video_per_minute: int = 20
    image_concurrent: int = 40
    image_per_minute: int = 80
    agents_concurrent: int = 10
    agents_per_minute: int = 30
    # A sandbox with time_scale 60 has a 1 s "minute".
    window_seconds: float = 60.0

    def __post_init__(self) -> None:
        for name in (
            "video_concurrent",
            "video_per_minute",
            "image_concurrent",
            "image_per_minute",
            "agents_concurrent",
            "agents_per_minute",
        ):
            value = getattr(self, name)
            if value < 1:
                raise DreamError(
                    "invalid_input", f"{name}: must be at least 1, got {value}", field=name
                )
        if not self.window_seconds > 0:
            raise DreamError(
                "invalid_input",
                f"window_seconds: must be > 0, got {self.window_seconds}",
                field="window_seconds",
            )

    def scaled(self, time_scale: float) -> Limits:
        """The same limits on a clock that runs `time_scale` times faster (the sandbox's)."""
        if not time_scale > 0:
            raise DreamError(
                "invalid_input", f"time_scale: must be > 0, got {time_scale:g}", field="time_scale"
            )
        return replace(self, window_seconds=self.window_seconds / time_scale)

    def concurrent(self, family: str) -> int:
        if family == AGENTS:
            return self.agents_concurrent
        return self.video_concurrent if family == VIDEO else self.image_concurrent

    def per_window(self, family: str) -> int:
        if family == AGENTS:
            return self.agents_per_minute
        return self.video_per_minute if family == VIDEO else self.image_per_minute


def family_of(model: str | None, generation_type: str | None = None) -> str:
    """The limit family of a create: "video" or "image".

    The generation type decides when it is known; otherwise the model (ray-* or photon-*).
    Anything unknown counts as video, the family with the tighter limits.
    """
    if generation_type in _VIDEO_TYPES:
        return VIDEO
    if generation_type in _IMAGE_TYPES:
        return IMAGE
    if model is not None and model.startswith("photon"):
        return IMAGE
    return VIDEO


def family_of_request(request: ApiRequest) -> str:
    """The family a create request counts in (its model and generation type say)."""
    body = request.json if isinstance(request.json, Mapping) else {}
    if "type" in body and "generation_type" not in body:
        return AGENTS  # the Luma Agents API's body names its `type`
    model, kind = body.get("model"), body.get("generation_type")
    return family_of(
        model if isinstance(model, str) else None, kind if isinstance(kind, str) else None
    )


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise DreamError(
            "invalid_input", f"unknown limit family {family!r}; allowed: {', '.join(FAMILIES)}"
        )
