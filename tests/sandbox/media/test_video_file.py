"""The MP4 a browser downloads: H.264, yuv420p, faststart, requested duration and shape."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import pytest

from dreamnodes.errors import DreamError
from dreamnodes.sandbox.media import VideoSpec, probe_video, render_video
from dreamnodes.sandbox.media.spec import frame_size

from .helpers import top_level_boxes

RATIOS = ["1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21"]


def _ratio(text: str) -> Fraction:
    width, height = text.split(":")
    return Fraction(int(width), int(height))


@pytest.mark.parametrize("duration", [5.0, 9.0])
@pytest.mark.parametrize("aspect_ratio", RATIOS)
def test_clip_has_requested_duration_and_aspect_ratio(aspect_ratio: str, duration: float) -> None:
    mp4 = render_video(VideoSpec("a lighthouse in a storm", duration, aspect_ratio, "720p"))
    info = probe_video(mp4)
    assert abs(info.duration_s - duration) <= 0.2
    assert info.container_duration_s is not None
    assert abs(info.container_duration_s - duration) <= 0.2
    assert info.frame_count == round(info.fps * duration)
    assert info.width % 2 == 0 and info.height % 2 == 0
    # Exact up to rounding each side to an even number of pixels.
    assert abs(info.width / info.height - float(_ratio(aspect_ratio))) < 2 / min(
        info.width, info.height
    )
    assert min(info.width, info.height) == 144


def test_clip_is_h264_yuv420p_with_moov_before_mdat() -> None:
    mp4 = render_video(VideoSpec("a lighthouse in a storm", 5.0, "16:9", "720p"))
    info = probe_video(mp4)
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
    boxes = top_level_boxes(mp4)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")
    with av.open(io.BytesIO(mp4)) as container:
        assert "mp4" in container.format.name
        # Browsers decode these profiles; RGB input must not have slipped into High 4:4:4.
        profile = container.streams.video[0].codec_context.profile
        assert profile in {"Constrained Baseline", "Baseline", "Main", "High"}


def test_full_size_uses_the_resolutions_height_at_24_fps() -> None:
    spec = VideoSpec("a lighthouse in a storm", 1.0, "16:9", "540p", full_size=True)
    info = probe_video(render_video(spec))
    assert (info.width, info.height, info.fps) == (960, 540, 24.0)
    assert info.frame_count == 24


@pytest.mark.parametrize(
    ("resolution", "aspect_ratio", "size"),
    [
        ("720p", "16:9", (1280, 720)),
        ("1080p", "16:9", (1920, 1080)),
        ("1080p", "9:16", (1080, 1920)),
        ("1080p", "21:9", (2520, 1080)),
        ("4k", "16:9", (1920, 1080)),  # capped: see spec.FULL_SHORT_SIDE
    ],
)
def test_full_size_frame_sizes(resolution: str, aspect_ratio: str, size: tuple[int, int]) -> None:
    spec = VideoSpec("x", 5.0, aspect_ratio, resolution, full_size=True)
    assert frame_size(spec) == size


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"aspect_ratio": "wide"}, "aspect_ratio"),
        ({"aspect_ratio": "0:9"}, "aspect_ratio"),
        ({"duration_s": 0.0}, "duration"),
        ({"resolution": "8k", "full_size": True}, "resolution"),
    ],
)
def test_impossible_specs_are_refused(change: dict[str, object], field: str) -> None:
    values: dict[str, object] = {
        "prompt": "a lighthouse",
        "duration_s": 5.0,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    values.update(change)
    with pytest.raises(DreamError) as caught:
        render_video(VideoSpec(**values))  # type: ignore[arg-type]
    assert caught.value.code == "invalid_input"
    assert caught.value.field == field


def test_unreadable_start_image_fails_like_luma() -> None:
    spec = VideoSpec("a lighthouse", 5.0, "16:9", "720p", start_image=b"not an image")
    with pytest.raises(DreamError, match="Failed to read user input frames"):
        render_video(spec)
