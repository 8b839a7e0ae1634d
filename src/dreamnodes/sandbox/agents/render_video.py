"""Ray 3.2 clips as real H.264 MP4s at 24 fps: text-to-video, start/end frames and keyframes
shown exactly at their frame indexes, extensions, edits that show their source (tinted by the
prompt, with its caption, keyframes at their source-frame positions) and reframes that place the
source on the new canvas. Small by default (short side 144 px); `full` uses the resolution.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import av
import numpy as np
from PIL import Image

from dreamnodes.sandbox.agents.catalog import FPS
from dreamnodes.sandbox.media.codec import RGBFrame, encode_mp4
from dreamnodes.sandbox.media.scene import (
    ClipPainter,
    apply_caption,
    backdrop,
    fit_cover,
    make_caption,
    palette_for,
)
from dreamnodes.sandbox.media.spec import size_for

SMALL_SHORT_SIDE = 144
FULL_SHORT_SIDE = {"360p": 360, "540p": 540, "720p": 720, "1080p": 1080}
EDIT_TINT = {"adhere": 0.12, "flex": 0.25, "reimagine": 0.45}
Anchor = tuple[int, Image.Image]  # (frame index, picture)


@dataclass
class ClipSpec:
    prompt: str
    aspect_ratio: str
    resolution: str
    full: bool = False
    duration_s: float = 5.0  # text/image-to-video; edits and reframes follow their source
    anchors: list[Anchor] = field(default_factory=list)  # start/end frames and keyframes
    loop: bool = False
    mode: str = "generate"  # "generate", "edit" (video_edit) or "reframe" (video_reframe)
    source: bytes | None = None  # video_edit / video_reframe
    strength: str | None = None  # video_edit
    position: dict[str, float] | None = None  # video_reframe's source_position


def frame_size(spec: ClipSpec) -> tuple[int, int]:
    short = FULL_SHORT_SIDE[spec.resolution] if spec.full else SMALL_SHORT_SIDE
    return size_for(spec.aspect_ratio, short)


def frame_total(duration_s: float) -> int:
    """Frames on the 24 fps grid, both ends included: 5s -> 121 frames (indexes 0..120)."""
    return round(duration_s * FPS) + 1


def decode(data: bytes) -> tuple[list[RGBFrame], float]:
    """A source video's frames and frame rate."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate) if stream.average_rate else float(FPS)
        frames = [cast(RGBFrame, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    if not frames:
        raise ValueError("the source video has no frames")
    return frames, rate


def _anchored(spec: ClipSpec, width: int, height: int, count: int) -> Iterator[RGBFrame]:
    """Each anchor's picture exactly at its index, painted clips in between."""
    anchors = sorted(((min(i, count - 1), img) for i, img in spec.anchors), key=lambda a: a[0])
    if not anchors:
        painter = ClipPainter(spec.prompt, width, height, loop=spec.loop)
        for index in range(count):
            yield painter.frame(index / (count - 1))
        return
    spans: list[tuple[int, int, ClipPainter]] = []
    first, last = anchors[0], anchors[-1]
    if first[0] > 0:
        spans.append((0, first[0], ClipPainter(spec.prompt, width, height, end=first[1])))
    for (a, image_a), (b, image_b) in itertools.pairwise(anchors):
        spans.append((a, b, ClipPainter(spec.prompt, width, height, start=image_a, end=image_b)))
    if last[0] < count - 1:
        end = first[1] if spec.loop else None
        tail = ClipPainter(spec.prompt, width, height, start=last[1], end=end)
        spans.append((last[0], count - 1, tail))
    index = 0
    for start, stop, painter in spans:
        while index <= stop:
            yield painter.frame((index - start) / max(1, stop - start))
            index += 1


def _edited(spec: ClipSpec, width: int, height: int) -> tuple[Iterator[RGBFrame], int]:
    frames, rate = decode(spec.source or b"")
    count = max(2, round(len(frames) / rate * FPS))
    tint = EDIT_TINT[(spec.strength or "flex_2").split("_")[0]]
    palette = palette_for(spec.prompt)
    colour = np.asarray(palette.accent, dtype=np.float32)
    caption = make_caption(spec.prompt, width, height)
    # edit keyframes sit on the source's frame grid
    anchors = {min(round(i * FPS / rate), count - 1): img for i, img in spec.anchors}

    def paint() -> Iterator[RGBFrame]:
        for index in range(count):
            if index in anchors:
                yield np.asarray(fit_cover(anchors[index], width, height)).copy()
                continue
            source = frames[min(len(frames) - 1, int(index * rate / FPS))]
            picture = np.asarray(fit_cover(Image.fromarray(source), width, height), np.float32)
            frame = cast(RGBFrame, (picture * (1 - tint) + colour * tint).astype(np.uint8))
            apply_caption(frame, caption)
            yield frame

    return paint(), count


def _placed(spec: ClipSpec, width: int, height: int) -> tuple[Iterator[RGBFrame], int]:
    frames, rate = decode(spec.source or b"")
    count = max(2, round(len(frames) / rate * FPS))
    src_h, src_w = frames[0].shape[:2]
    if spec.position is None:  # fitted and centred
        scale = min(width / src_w, height / src_h)
        w, h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
        x, y = (width - w) // 2, (height - h) // 2
    else:
        p = spec.position
        x, y = round(p["x_norm"] * width), round(p["y_norm"] * height)
        w, h = max(1, round(p["w_norm"] * width)), max(1, round(p["h_norm"] * height))
    canvas = Image.fromarray(backdrop(palette_for(spec.prompt), width, height))

    def paint() -> Iterator[RGBFrame]:
        for index in range(count):
            source = frames[min(len(frames) - 1, int(index * rate / FPS))]
            frame = canvas.copy()
            frame.paste(Image.fromarray(source).resize((w, h), Image.Resampling.BILINEAR), (x, y))
            yield np.asarray(frame).copy()

    return paint(), count


def render_clip(spec: ClipSpec) -> bytes:
    width, height = frame_size(spec)
    if spec.mode == "reframe":
        frames, _ = _placed(spec, width, height)
    elif spec.mode == "edit":
        frames, _ = _edited(spec, width, height)
    else:
        frames = _anchored(spec, width, height, frame_total(spec.duration_s))
    return encode_mp4(frames, width, height, FPS)


def first_and_last(data: bytes) -> tuple[Image.Image, Image.Image]:
    frames, _ = decode(data)
    return Image.fromarray(frames[0]), Image.fromarray(frames[-1])


__all__ = ["ClipSpec", "first_and_last", "frame_total", "render_clip"]
