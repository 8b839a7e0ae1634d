"""What an input's bytes are: readable or not, and why not, as a failure code and a reason."""

from __future__ import annotations

import io
from typing import Any

from dreamnodes.sandbox.agents import catalog

Verdict = tuple[str, str]  # (failure_code, failure_reason)


def check_image(data: bytes, mime: str | None = None) -> tuple[Any, Verdict | None]:
    """(PIL RGB image or None, None or why it cannot be used)."""
    from PIL import Image, UnidentifiedImageError

    if mime and mime not in catalog.IMAGE_TYPES_IN:
        return None, ("unsupported_format", f"Unsupported image format: {mime}")
    if len(data) > catalog.MAX_INPUT_BYTES:
        return None, ("image_too_large", "Input image exceeds 50 MB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > catalog.MAX_INPUT_PIXELS:
                return None, ("image_too_large", "Input image exceeds 100 megapixels")
            if image.format not in ("JPEG", "PNG", "WEBP"):
                return None, ("unsupported_format", f"Unsupported image format: {image.format}")
            return image.convert("RGB"), None
    except (UnidentifiedImageError, OSError, ValueError):
        return None, ("corrupt_input", "Input image could not be decoded")


def check_video(data: bytes) -> tuple[float, Verdict | None]:
    """(duration in seconds, None or why it cannot be used)."""
    try:
        import av
    except ImportError:  # no media extra: accept it, as five seconds
        return 5.0, None
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base), None
            if container.duration is not None:
                return container.duration / 1_000_000, None
            return 5.0, None
    except (av.FFmpegError, IndexError, ValueError):
        return 0.0, ("corrupt_input", "Input video could not be decoded")


def problem(data: bytes, mime: str) -> str | None:
    """A Files ingest verdict: None (ready) or the failure_reason."""
    if mime.startswith("image/"):
        return None if (verdict := check_image(data, mime)[1]) is None else verdict[1]
    _, verdict = check_video(data)
    return None if verdict is None else verdict[1]
