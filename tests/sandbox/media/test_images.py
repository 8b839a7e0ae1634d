"""Images: JPEG or PNG as asked, with the aspect ratio, drawn from the prompt and references."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dreamnodes.errors import DreamError
from dreamnodes.sandbox.media import render_image

from .helpers import keyframe_png, mean_abs_diff


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_jpg_is_a_jpeg() -> None:
    data = render_image("a bowl of ramen", "16:9", "jpg")
    assert data[:3] == b"\xff\xd8\xff"
    image = _open(data)
    assert (image.format, image.size) == ("JPEG", (512, 288))


def test_png_is_a_png() -> None:
    data = render_image("a bowl of ramen", "9:16", "png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = _open(data)
    assert (image.format, image.size) == ("PNG", (288, 512))


@pytest.mark.parametrize(
    ("aspect_ratio", "size"),
    [("1:1", (512, 512)), ("4:3", (512, 384)), ("3:4", (384, 512)), ("21:9", (512, 219))],
)
def test_image_has_the_aspect_ratio(aspect_ratio: str, size: tuple[int, int]) -> None:
    assert _open(render_image("a bowl of ramen", aspect_ratio, "png")).size == size


def test_full_size_image_is_1024_on_the_long_side() -> None:
    image = _open(render_image("a bowl of ramen", "16:9", "jpg", full_size=True))
    assert image.size == (1024, 576)


def test_prompts_and_references_change_the_picture() -> None:
    def pixels(data: bytes) -> np.ndarray:
        return np.asarray(_open(data).convert("RGB"))

    ramen = pixels(render_image("a bowl of ramen", "1:1", "png"))
    castle = pixels(render_image("a castle on a hill", "1:1", "png"))
    with_ref = pixels(render_image("a bowl of ramen", "1:1", "png", refs=(keyframe_png(),)))
    assert mean_abs_diff(ramen, castle) > 20
    assert mean_abs_diff(ramen, with_ref) > 5


def test_unknown_format_is_refused() -> None:
    with pytest.raises(DreamError) as caught:
        render_image("a bowl of ramen", "1:1", "gif")
    assert caught.value.field == "format"
