"""The pictures: a prompt's palette and backdrop, moving shapes, the caption, keyframe images.

Everything is derived from a hash of the prompt, so a prompt always paints the same picture
and two prompts paint visibly different ones. Frames are RGB uint8 arrays (height, width, 3).
A few lines over 300: the palette, shapes and caption share their geometry helpers.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from dreamnodes.errors import DreamError

RGBFrame = NDArray[np.uint8]
Color = tuple[float, float, float]

# How far the camera travels over a procedural backdrop, and zooms into a keyframe image.
PAN_MARGIN = 0.25
ZOOM = 0.15
CAPTION_FADE = 0.15  # share of the clip over which the caption fades in over a keyframe


def _hue(hue: float, saturation: float, value: float) -> Color:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return (red * 255.0, green * 255.0, blue * 255.0)


@dataclass(frozen=True)
class Palette:
    """Colours and shape parameters chosen by the prompt's hash."""

    dark: Color
    light: Color
    accent: Color
    second: Color
    angle: float  # gradient direction, radians
    stripes: float  # stripe frequency
    phase: float  # 0..1, where the shapes start on their path


def palette_for(prompt: str) -> Palette:
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    base = digest[0] / 255.0
    return Palette(
        dark=_hue(base, 0.65, 0.22 + digest[1] / 255.0 * 0.2),
        light=_hue(base + 0.08 + digest[2] / 255.0 * 0.25, 0.55, 0.75 + digest[3] / 255.0 * 0.2),
        accent=_hue(base + 0.5, 0.85, 1.0),
        second=_hue(base + 0.25 + digest[4] / 255.0 * 0.2, 0.7, 0.95),
        angle=digest[5] / 255.0 * math.pi,
        stripes=2.0 + digest[6] / 255.0 * 4.0,
        phase=digest[7] / 255.0,
    )


def backdrop(palette: Palette, width: int, height: int) -> RGBFrame:
    """A gradient with soft diagonal stripes, in coordinates relative to the picture's size."""
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    aspect = np.float32(width / height)
    along = xs * aspect * np.float32(math.cos(palette.angle)) + ys * np.float32(
        math.sin(palette.angle)
    )
    along = (along - along.min()) / max(float(along.max() - along.min()), 1e-6)
    stripes = 0.5 + 0.5 * np.sin(
        2.0 * math.pi * (palette.stripes * (xs * aspect - ys) + palette.phase)
    )
    mix = (0.8 * along + 0.2 * stripes)[..., None]
    dark = np.asarray(palette.dark, dtype=np.float32)
    light = np.asarray(palette.light, dtype=np.float32)
    picture = dark + (light - dark) * mix
    return cast(RGBFrame, np.clip(picture, 0, 255).astype(np.uint8))


def draw_disc(frame: RGBFrame, cx: float, cy: float, radius: float, color: Color) -> None:
    """An anti-aliased filled disc, painted in place on the patch it covers."""
    height, width = frame.shape[:2]
    x0, x1 = max(0, int(cx - radius - 1)), min(width, int(cx + radius + 2))
    y0, y1 = max(0, int(cy - radius - 1)), min(height, int(cy + radius + 2))
    if x0 >= x1 or y0 >= y1:
        return
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5
    distance = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
    alpha = np.clip(radius - distance + 0.5, 0.0, 1.0)[..., None] * 0.9
    patch = frame[y0:y1, x0:x1].astype(np.float32)
    patch += (np.asarray(color, dtype=np.float32) - patch) * alpha
    frame[y0:y1, x0:x1] = patch.astype(np.uint8)


def draw_shapes(frame: RGBFrame, palette: Palette, turn: float) -> None:
    """Two discs circling the picture; `turn` in turns (1.0 brings them back to the start)."""
    height, width = frame.shape[:2]
    small = min(width, height)
    angle = 2.0 * math.pi * (turn + palette.phase)
    draw_disc(
        frame,
        width * (0.5 + 0.3 * math.cos(angle)),
        height * (0.45 + 0.22 * math.sin(angle)),
        small * 0.14,
        palette.accent,
    )
    draw_disc(
        frame,
        width * (0.5 - 0.35 * math.sin(angle)),
        height * (0.4 + 0.2 * math.cos(2.0 * angle)),
        small * 0.08,
        palette.second,
    )


@dataclass(frozen=True)
class Caption:
    """The prompt as a semi-transparent label: its colours, coverage and place on the frame."""

    rgb: Image.Image  # "RGB"
    alpha: Image.Image  # "L", the label's coverage
    x: int
    y: int


def _wrap(
    text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float, max_lines: int
) -> list[str]:
    lines: list[str] = []
    words = text.split()
    while words and len(lines) < max_lines:
        line = words.pop(0)
        while words and font.getlength(f"{line} {words[0]}") <= width:
            line = f"{line} {words.pop(0)}"
        while len(line) > 1 and font.getlength(line) > width:
            line = line[:-1]
        lines.append(line)
    if words and lines:
        last = lines[-1]
        while last and font.getlength(last + "…") > width:
            last = last[:-1]
        lines[-1] = last + "…"
    return lines


def make_caption(prompt: str, width: int, height: int) -> Caption | None:
    """The prompt wrapped on up to three lines near the bottom, or None for an empty prompt."""
    small = min(width, height)
    size = max(10, small // 11)
    font = ImageFont.load_default(size=size)
    margin = max(4, small // 30)
    lines = _wrap(prompt, font, width - 4 * margin, 2 if small < 400 else 3)
    if not lines:
        return None
    line_height = int(size * 1.25)
    box_w = int(max(font.getlength(line) for line in lines)) + 2 * margin
    box_h = line_height * len(lines) + margin
    label = Image.new("RGBA", (box_w, box_h), (0, 0, 0, 140))
    draw = ImageDraw.Draw(label)
    for number, line in enumerate(lines):
        draw.text((margin, margin // 2 + number * line_height), line, font=font, fill="white")
    return Caption(
        rgb=label.convert("RGB"),
        alpha=label.getchannel("A"),
        x=(width - box_w) // 2,
        y=height - box_h - margin,
    )


def apply_caption(frame: RGBFrame, caption: Caption | None, strength: float = 1.0) -> None:
    if caption is None or strength <= 0.0:
        return
    w, h = caption.alpha.size
    region = frame[caption.y : caption.y + h, caption.x : caption.x + w]
    # Pillow's masked paste: several times faster than float blending at 1080p.
    patch = Image.fromarray(region)
    mask = caption.alpha
    if strength < 1.0:
        mask = mask.point(lambda value: round(value * strength))
    patch.paste(caption.rgb, (0, 0), mask)
    region[...] = np.asarray(patch)


def load_image(data: bytes, what: str) -> Image.Image:
    """Decode JPEG/PNG bytes to RGB, or fail as Luma does for frames it cannot read."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DreamError("invalid_input", f"Failed to read user input frames ({what})") from exc


def fit_cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale the image to cover width x height and crop the centre (CSS `object-fit: cover`)."""
    scale = max(width / image.width, height / image.height)
    crop_w, crop_h = width / scale, height / scale
    left, top = (image.width - crop_w) / 2, (image.height - crop_h) / 2
    return image.resize(
        (width, height), Image.Resampling.BILINEAR, box=(left, top, left + crop_w, top + crop_h)
    )


def smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


class ClipPainter:
    """Paints frame t (0 = first frame, 1 = last) of one clip.

    Without a start frame: a camera pan over the prompt's backdrop, with moving discs.
    With one: that image, then a slow zoom towards a point chosen by the prompt's hash.
    With an end frame: the picture blends into it, and the last frame is exactly it.
    With loop: every motion is periodic, so the last frame is the first.
    """

    def __init__(
        self,
        prompt: str,
        width: int,
        height: int,
        *,
        start: Image.Image | None = None,
        end: Image.Image | None = None,
        loop: bool = False,
    ) -> None:
        self.width, self.height, self.loop = width, height, loop
        self.palette = palette_for(prompt)
        self.caption = make_caption(prompt, width, height)
        self.start = fit_cover(start, width, height) if start is not None else None
        self.start_pixels = np.asarray(self.start) if self.start is not None else None
        self.end = np.asarray(fit_cover(end, width, height)) if end is not None else None
        self.world: RGBFrame | None = None
        if self.start is None:
            margin_x, margin_y = int(width * PAN_MARGIN), int(height * PAN_MARGIN * 0.4)
            self.world = backdrop(self.palette, width + margin_x, height + margin_y)

    def _travel(self, t: float) -> float:
        """How far along its move the camera is: 0 -> 1, or 0 -> 1 -> 0 for a loop."""
        return (1.0 - math.cos(2.0 * math.pi * t)) / 2.0 if self.loop else smoothstep(t)

    def _zoomed_start(self, travel: float) -> RGBFrame:
        assert self.start is not None and self.start_pixels is not None
        if travel <= 0.0:
            return self.start_pixels.copy()
        zoom = 1.0 + ZOOM * travel
        crop_w, crop_h = self.width / zoom, self.height / zoom
        focus_x = self.width * (0.3 + 0.4 * self.palette.phase)
        focus_y = self.height * 0.45
        cx = self.width / 2 + (focus_x - self.width / 2) * travel
        cy = self.height / 2 + (focus_y - self.height / 2) * travel
        left = min(max(cx - crop_w / 2, 0.0), self.width - crop_w)
        top = min(max(cy - crop_h / 2, 0.0), self.height - crop_h)
        moved = self.start.resize(
            (self.width, self.height),
            Image.Resampling.BILINEAR,
            box=(left, top, left + crop_w, top + crop_h),
        )
        return np.asarray(moved).copy()

    def _panned_backdrop(self, t: float, travel: float) -> RGBFrame:
        assert self.world is not None
        spare_y, spare_x = (self.world.shape[0] - self.height, self.world.shape[1] - self.width)
        x = round(spare_x * travel)
        y = round(spare_y * (0.5 - 0.5 * math.cos(math.pi * travel)))
        frame = self.world[y : y + self.height, x : x + self.width].copy()
        draw_shapes(frame, self.palette, t)
        return frame

    def frame(self, t: float) -> RGBFrame:
        travel = self._travel(t)
        if self.start is not None:
            frame = self._zoomed_start(travel)
            # The caption fades in, so the first frame is the keyframe image itself.
            shown = min(t, 1.0 - t) if self.loop else t
            apply_caption(frame, self.caption, smoothstep(shown / CAPTION_FADE))
        else:
            frame = self._panned_backdrop(t, travel)
            apply_caption(frame, self.caption)
        if self.end is not None:
            weight = smoothstep((t - 0.4) / 0.6)
            if weight >= 1.0:
                return self.end.copy()
            if weight > 0.0:
                mixed = frame.astype(np.float32) * (1.0 - weight) + self.end * np.float32(weight)
                frame = cast(RGBFrame, mixed.astype(np.uint8))
        return frame


def tint_and_inset(picture: RGBFrame, refs: list[Image.Image]) -> RGBFrame:
    """Reference images colour the picture (their mean colour) and the first shows as an inset."""
    if not refs:
        return picture
    height, width = picture.shape[:2]
    mean = np.mean([np.asarray(ref, dtype=np.float32).mean(axis=(0, 1)) for ref in refs], axis=0)
    out = picture.astype(np.float32) * 0.7 + mean * 0.3
    small = min(width, height)
    inset_w, inset_h = max(8, width // 4), max(8, height // 4)
    border = max(1, small // 100)
    x, y = width - inset_w - 2 * border - small // 30, small // 30
    out[y : y + inset_h + 2 * border, x : x + inset_w + 2 * border] = 255.0
    inset = np.asarray(fit_cover(refs[0], inset_w, inset_h), dtype=np.float32)
    out[y + border : y + border + inset_h, x + border : x + border + inset_w] = inset
    return cast(RGBFrame, np.clip(out, 0, 255).astype(np.uint8))
