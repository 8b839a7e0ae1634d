"""Fixed vocabulary of the Luma API as the sandbox serves it: models, options, concepts, prices.

Prices are estimates from public listings [unconfirmed]; the multipliers for resolution and
duration are the sandbox's own guess [unconfirmed].
"""

from __future__ import annotations

from typing import Final

VIDEO_MODELS: Final = ("ray-2", "ray-flash-2", "ray-1-6")
EDIT_VIDEO_MODELS: Final = ("ray-2", "ray-flash-2")
IMAGE_MODELS: Final = ("photon-1", "photon-flash-1")
ASPECT_RATIOS: Final = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
DURATIONS: Final = ("5s", "9s")
RESOLUTIONS: Final = ("540p", "720p", "1080p", "4k")
IMAGE_FORMATS: Final = ("jpg", "png")
MODIFY_MODES: Final = tuple(
    f"{kind}_{n}" for kind in ("adhere", "flex", "reimagine") for n in (1, 2, 3)
)
DEFAULT_RESOLUTION: Final = "720p"  # [unconfirmed] what Luma fills in when absent
DEFAULT_DURATION: Final = "5s"
PROMPT_MIN: Final = 3
PROMPT_MAX: Final = 5000

# Words that make a generation fail with "Contains blacklisted words" (case-insensitive).
BLACKLIST: Final = ("blacklisted",)

CONCEPTS: Final = (
    "dolly_zoom",
    "zoom_in",
    "zoom_out",
    "pan_left",
    "pan_right",
    "tilt_up",
    "tilt_down",
    "orbit_left",
    "orbit_right",
    "crane_up",
    "crane_down",
    "push_in",
    "pull_out",
    "truck_left",
    "truck_right",
    "pedestal_up",
    "pedestal_down",
    "aerial",
    "handheld",
    "bolt_cam",
    "static",
    "tiny_planet",
)

CAMERA_MOTIONS: Final = (
    "Static",
    "Move Left",
    "Move Right",
    "Move Up",
    "Move Down",
    "Push In",
    "Pull Out",
    "Zoom In",
    "Zoom Out",
    "Pan Left",
    "Pan Right",
    "Orbit Left",
    "Orbit Right",
    "Crane Up",
    "Crane Down",
)

# US cents for a 5 s clip at 540p.
_VIDEO_BASE: Final = {"ray-2": 57.0, "ray-flash-2": 20.0, "ray-1-6": 35.0}
_RES_FACTOR: Final = {"540p": 1.0, "720p": 2.0, "1080p": 4.0, "4k": 9.0}
_IMAGE_PRICE: Final = {"photon-1": 1.5, "photon-flash-1": 0.4}
UPSCALE_PRICE: Final = 20.0
AUDIO_PRICE: Final = 10.0


def video_price(model: str, resolution: str | None, duration: str | None) -> float:
    base = _VIDEO_BASE.get(model, 57.0)
    factor = _RES_FACTOR.get(resolution or "540p", 1.0)
    seconds = 9.0 if duration == "9s" else 5.0
    return round(base * factor * seconds / 5.0, 2)


def image_price(model: str) -> float:
    return _IMAGE_PRICE.get(model, 1.5)
