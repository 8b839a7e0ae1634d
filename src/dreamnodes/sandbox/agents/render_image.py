"""UNI-1 pictures: text-to-image and edits (the source shown under the prompt's tint and
caption, references inset) as PNG or JPEG of the asked aspect ratio, and layering: the source
split into RGBA PNG layers, front to back, the last one the opaque background.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from dreamnodes.sandbox.media.scene import (
    apply_caption,
    backdrop,
    draw_shapes,
    fit_cover,
    make_caption,
    palette_for,
    tint_and_inset,
)
from dreamnodes.sandbox.media.spec import image_size

SMALL_LONG_SIDE = 512
FULL_LONG_SIDE = 2048  # uni-1 renders 2K
LAYER_LONG_SIDE = {"1k": 1024, "2k": 2048}
EDIT_TINT = 0.2


def _size_of(source: Image.Image, long_side: int) -> tuple[int, int]:
    scale = long_side / max(source.width, source.height)
    return max(1, round(source.width * scale)), max(1, round(source.height * scale))


def _encode(picture: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "jpeg":
        picture.convert("RGB").save(out, format="JPEG", quality=88)
    else:
        picture.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def render_picture(
    prompt: str,
    aspect_ratio: str | None,
    fmt: str,
    full: bool,
    source: Image.Image | None = None,
    refs: tuple[Image.Image, ...] = (),
) -> bytes:
    """A picture of the prompt; with a source (image_edit) the source is what it shows."""
    long_side = FULL_LONG_SIDE if full else SMALL_LONG_SIDE
    palette = palette_for(prompt)
    if source is not None:
        width, height = (
            image_size(aspect_ratio, long_side) if aspect_ratio else _size_of(source, long_side)
        )
        base = np.asarray(fit_cover(source, width, height), dtype=np.float32)
        colour = np.asarray(palette.accent, dtype=np.float32)
        picture = (base * (1 - EDIT_TINT) + colour * EDIT_TINT).astype(np.uint8)
    else:
        width, height = image_size(aspect_ratio or "1:1", long_side)
        picture = backdrop(palette, width, height)
        draw_shapes(picture, palette, 0.0)
    picture = tint_and_inset(picture, list(refs))
    apply_caption(picture, make_caption(prompt, width, height))
    return _encode(Image.fromarray(np.ascontiguousarray(picture)), fmt)


LAYERS = (
    ("subject", "hard", "The main subject in the centre of the picture, cut out along hard edges"),
    ("midground", "soft", "A soft-edged band of the middle ground, faded at its edges"),
    ("background", "none", "The opaque background behind everything else"),
)


def render_layers(
    prompt: str, source: Image.Image, resolution: str, full: bool
) -> list[tuple[bytes, dict[str, Any]]]:
    """RGBA PNG layers of the source with their `layer` metadata, front to back."""
    width, height = _size_of(source, LAYER_LONG_SIDE[resolution] if full else SMALL_LONG_SIDE)
    picture = source.resize((width, height), Image.Resampling.BILINEAR).convert("RGB")
    small = min(width, height)
    subject = Image.new("L", (width, height), 0)
    cx, cy, r = width / 2, height * 0.55, small * 0.28
    ImageDraw.Draw(subject).ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    band = Image.new("L", (width, height), 0)
    ImageDraw.Draw(band).rectangle((0, round(height * 0.6), width, round(height * 0.9)), fill=255)
    band = band.filter(ImageFilter.GaussianBlur(max(2, small // 20)))
    band = Image.fromarray(np.minimum(np.asarray(band), 255 - np.asarray(subject)))
    background = picture.copy()
    background.paste(picture.filter(ImageFilter.GaussianBlur(max(2, small // 15))), mask=subject)
    layers = []
    guide = f" (guided by: {prompt})" if prompt else ""
    for index, ((label, hint, text), alpha) in enumerate(
        zip(LAYERS, (subject, band, None), strict=True)
    ):
        rgba = (background if alpha is None else picture).convert("RGBA")
        if alpha is not None:
            rgba.putalpha(alpha)
        meta = {"index": index, "label": label, "description": text + guide, "alpha_hint": hint}
        layers.append((_encode(rgba, "png"), meta))
    return layers
