"""What a clip is asked to be, and the frame size, rate and count that follow from it."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from dreamnodes.errors import DreamError

# Small by default so a 5 s clip renders in well under a second: the short side is 144 px,
# which makes every Luma aspect ratio an exact even size (16:9 -> 256x144, 21:9 -> 336x144).
SMALL_SHORT_SIDE = 144
SMALL_FPS = 12
FULL_FPS = 24
# The short side at full size. 4k is capped to 1080 (a 4k H.264 render takes tens of seconds
# and a sandbox never needs it); the Generation still says "4k".
FULL_SHORT_SIDE = {"540p": 540, "720p": 720, "1080p": 1080, "4k": 1080}
MAX_DURATION_S = 60.0


@dataclass(frozen=True)
class VideoSpec:
    """One clip to render: the request's prompt, shape and keyframes.

    start_image: the first frame is that image (cover-cropped), then the camera zooms over it.
    end_image: the picture blends into it over the second half; the last frame is the image.
    source_video: an extension; the first frame is the source's last frame, or with reverse
    the last frame is the source's first (an explicit start/end image takes precedence).
    loop: every motion is periodic so the last frame is the first (an end frame wins over it).
    audio: a soundtrack prompt (Add Audio): an AAC track of a chord derived from it.
    """

    prompt: str
    duration_s: float
    aspect_ratio: str
    resolution: str
    full_size: bool = False
    start_image: bytes | None = None
    end_image: bytes | None = None
    source_video: bytes | None = None
    reverse: bool = False
    loop: bool = False
    audio: str | None = None


def parse_aspect_ratio(aspect_ratio: str) -> Fraction:
    """`"16:9"` -> 16/9; any `W:H` of positive integers is accepted."""
    parts = aspect_ratio.split(":")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        width = height = 0
    if len(parts) != 2 or width <= 0 or height <= 0:
        raise DreamError(
            "invalid_input",
            f"aspect_ratio {aspect_ratio!r} is not W:H (for example '16:9')",
            field="aspect_ratio",
        )
    return Fraction(width, height)


def _even(value: Fraction) -> int:
    return max(2, 2 * round(value / 2))


def size_for(aspect_ratio: str, short_side: int) -> tuple[int, int]:
    """Even (width, height) with the given short side and the aspect ratio, rounded to even."""
    ratio = parse_aspect_ratio(aspect_ratio)
    if ratio >= 1:
        return _even(short_side * ratio), _even(Fraction(short_side))
    return _even(Fraction(short_side)), _even(short_side / ratio)


def image_size(aspect_ratio: str, long_side: int) -> tuple[int, int]:
    """(width, height) of a still with the given long side; images need not be even."""
    ratio = parse_aspect_ratio(aspect_ratio)
    if ratio >= 1:
        return long_side, max(1, round(long_side / ratio))
    return max(1, round(long_side * ratio)), long_side


def frame_size(spec: VideoSpec) -> tuple[int, int]:
    if not spec.full_size:
        return size_for(spec.aspect_ratio, SMALL_SHORT_SIDE)
    short_side = FULL_SHORT_SIDE.get(spec.resolution)
    if short_side is None:
        allowed = ", ".join(FULL_SHORT_SIDE)
        raise DreamError(
            "invalid_input",
            f"resolution {spec.resolution!r} is not one of {allowed}",
            field="resolution",
        )
    return size_for(spec.aspect_ratio, short_side)


def frame_rate(spec: VideoSpec) -> int:
    return FULL_FPS if spec.full_size else SMALL_FPS


def frame_count(spec: VideoSpec) -> int:
    if not 0 < spec.duration_s <= MAX_DURATION_S:
        raise DreamError(
            "invalid_input",
            f"duration_s {spec.duration_s!r} is not between 0 and {MAX_DURATION_S:g} seconds",
            field="duration",
        )
    return max(2, round(frame_rate(spec) * spec.duration_s))
