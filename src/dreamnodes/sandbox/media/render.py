"""render_video and render_image: a request in, playable file bytes out (cached)."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Generator, Iterator
from queue import Full, Queue
from typing import cast

import numpy as np
from PIL import Image

from dreamnodes.errors import DreamError

from .cache import RenderCache
from .codec import RGBFrame, encode_mp4, first_and_last_frame
from .scene import (
    ClipPainter,
    apply_caption,
    backdrop,
    draw_shapes,
    load_image,
    make_caption,
    palette_for,
    tint_and_inset,
)
from .spec import VideoSpec, frame_count, frame_rate, frame_size, image_size

# Images: 512 px on the long side by default (fast), 1024 px with full_size=True.
IMAGE_LONG_SIDE = 512
FULL_IMAGE_LONG_SIDE = 1024
IMAGE_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG"}

# Large frames are painted in a second thread while the encoder works; small ones are so
# quick that a thread would only add overhead.
PAINT_AHEAD_PIXELS = 640 * 360

_cache = RenderCache()


def clear_cache() -> None:
    """Forget every rendered file (benchmarks and tests use it to measure cold renders)."""
    _cache.clear()


def _digest(*parts: object) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        raw = part if isinstance(part, bytes) else repr(part).encode("utf-8")
        hasher.update(len(raw).to_bytes(8, "big"))
        hasher.update(raw)
    return hasher.hexdigest()


def _spec_key(spec: VideoSpec) -> str:
    return _digest(
        "video",
        spec.prompt,
        float(spec.duration_s),
        spec.aspect_ratio,
        spec.resolution if spec.full_size else "",
        spec.full_size,
        spec.start_image or b"",
        spec.start_image is not None,
        spec.end_image or b"",
        spec.end_image is not None,
        spec.source_video or b"",
        spec.source_video is not None,
        spec.reverse,
        spec.loop,
        spec.audio,
    )


def _painter(spec: VideoSpec, width: int, height: int) -> ClipPainter:
    start = load_image(spec.start_image, "start image") if spec.start_image else None
    end = load_image(spec.end_image, "end image") if spec.end_image else None
    if spec.source_video is not None:
        first, last = first_and_last_frame(spec.source_video)
        if spec.reverse:
            # The clip leads up to the source: its last frame is the source's first.
            end = end or Image.fromarray(first)
        else:
            start = start or Image.fromarray(last)
    return ClipPainter(spec.prompt, width, height, start=start, end=end, loop=spec.loop)


def _frames(painter: ClipPainter, count: int) -> Iterator[RGBFrame]:
    for index in range(count):
        yield painter.frame(index / (count - 1))


def _painted_ahead(frames: Iterator[RGBFrame], depth: int = 4) -> Generator[RGBFrame, None, None]:
    """Paint in a second thread while the encoder works (both mostly release the GIL)."""
    done = object()
    queue: Queue[RGBFrame | BaseException | object] = Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: RGBFrame | BaseException | object) -> bool:
        """Queue the item unless the consumer has gone; never block forever."""
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def paint() -> None:
        try:
            for frame in frames:
                if not offer(frame):
                    return
            offer(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            offer(exc)

    painter = threading.Thread(target=paint, name="dreamnodes-paint", daemon=True)
    painter.start()
    try:
        while True:
            item = queue.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(RGBFrame, item)
    finally:
        stop.set()
        painter.join()


def _render_video(spec: VideoSpec) -> bytes:
    width, height = frame_size(spec)
    count = frame_count(spec)
    painter = _painter(spec, width, height)
    frames = _frames(painter, count)
    if width * height >= PAINT_AHEAD_PIXELS:
        frames = _painted_ahead(frames)
    return encode_mp4(frames, width, height, frame_rate(spec), soundtrack=spec.audio)


def render_video(spec: VideoSpec) -> bytes:
    """An H.264 MP4 of the spec: small (short side 144 px, 12 fps) unless full_size.

    Full size is the resolution's short side (540/720/1080; 4k is capped to 1080) at 24 fps.
    Identical specs return the cached bytes; safe to call from several threads.
    """
    return _cache.get_or_render(_spec_key(spec), lambda: _render_video(spec))


def _render_image(
    prompt: str, aspect_ratio: str, image_format: str, refs: tuple[bytes, ...], long_side: int
) -> bytes:
    width, height = image_size(aspect_ratio, long_side)
    palette = palette_for(prompt)
    picture = backdrop(palette, width, height)
    draw_shapes(picture, palette, 0.0)
    references = [load_image(ref, f"reference image {n + 1}") for n, ref in enumerate(refs)]
    picture = tint_and_inset(picture, references)
    apply_caption(picture, make_caption(prompt, width, height))
    out = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(picture))
    if image_format == "JPEG":
        image.save(out, format="JPEG", quality=88)
    else:
        image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def render_image(
    prompt: str,
    aspect_ratio: str,
    fmt: str,
    refs: tuple[bytes, ...] = (),
    *,
    full_size: bool = False,
) -> bytes:
    """A JPEG ("jpg") or PNG ("png") picture of the prompt with the aspect ratio.

    512 px on the long side (1024 with full_size). References tint it and the first is inset.
    """
    image_format = IMAGE_FORMATS.get(fmt.lower())
    if image_format is None:
        raise DreamError("invalid_input", f"format {fmt!r} is not jpg or png", field="format")
    long_side = FULL_IMAGE_LONG_SIDE if full_size else IMAGE_LONG_SIDE
    key = _digest("image", prompt, aspect_ratio, image_format, long_side, *refs)
    return _cache.get_or_render(
        key, lambda: _render_image(prompt, aspect_ratio, image_format, refs, long_side)
    )
