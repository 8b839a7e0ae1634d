"""Shared helpers for the media tests: test pictures, frame comparison, MP4 box layout."""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageOps


def mean_abs_diff(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def keyframe_png(width: int = 400, height: int = 300, hue: str = "red") -> bytes:
    """A bold test picture: a two-colour gradient, a yellow block and a dark bar."""
    image = Image.new("RGB", (width, height))
    ramp = np.linspace(0, 255, width, dtype=np.uint8)
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    if hue == "red":
        pixels[..., 0] = 255 - ramp
        pixels[..., 2] = ramp
    else:
        pixels[..., 1] = ramp
        pixels[..., 2] = 255 - ramp
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    draw.rectangle((width // 5, height // 4, width // 2, height * 3 // 4), fill=(250, 230, 20))
    draw.rectangle((0, height * 5 // 6, width, height), fill=(10, 10, 10))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def fitted(data: bytes, width: int, height: int) -> NDArray[np.uint8]:
    """The picture as a player should show it in a width x height frame: centre-cropped cover."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(ImageOps.fit(image.convert("RGB"), (width, height)))


def top_level_boxes(mp4: bytes) -> list[str]:
    """The names of an MP4's top-level boxes, in file order."""
    names: list[str] = []
    offset = 0
    while offset + 8 <= len(mp4):
        size = int.from_bytes(mp4[offset : offset + 4], "big")
        name = mp4[offset + 4 : offset + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(mp4[offset + 8 : offset + 16], "big")
        elif size == 0:
            size = len(mp4) - offset
        assert size >= 8, f"bad box size {size} at {offset}"
        names.append(name)
        offset += size
    assert offset == len(mp4), "boxes do not add up to the file length"
    return names
