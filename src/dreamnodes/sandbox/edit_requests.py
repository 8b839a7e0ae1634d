"""Checking the bodies of the Dream Machine's edits: upscale, audio, modify and reframe."""

from __future__ import annotations

from typing import Any

from dreamnodes.sandbox import catalog
from dreamnodes.sandbox.validation import (
    Body,
    bad,
    body_of,
    callback,
    check_type,
    choice,
    prompt_of,
    url_object,
)


def upscale_request(raw: Any) -> Body:
    body = body_of(raw) if raw is not None else {}
    check_type(body, "upscale_video")
    return {
        "generation_type": "upscale_video",
        "resolution": choice(body, "resolution", catalog.RESOLUTIONS, "1080p"),
        "callback_url": callback(body),
    }


def audio_request(raw: Any) -> Body:
    body = body_of(raw) if raw is not None else {}
    check_type(body, "add_audio")
    negative = body.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        raise bad("Invalid negative_prompt: must be a string")
    return {
        "generation_type": "add_audio",
        "prompt": prompt_of(body, required=False),
        "negative_prompt": negative,
        "callback_url": callback(body),
    }


def modify_request(raw: Any) -> Body:
    body = body_of(raw)
    check_type(body, "modify_video")
    return {
        "generation_type": "modify_video",
        "model": _requiredchoice(body, "model", catalog.EDIT_VIDEO_MODELS),
        "mode": _requiredchoice(body, "mode", catalog.MODIFY_MODES),
        "media": url_object(body, "media", required=True),
        "first_frame": url_object(body, "first_frame", required=False),
        "prompt": prompt_of(body, required=False),
        "callback_url": callback(body),
    }


_REFRAME_INTS = (
    "grid_position_x",
    "grid_position_y",
    "resized_height",
    "resized_width",
    "x_end",
    "x_start",
    "y_end",
    "y_start",
)


def reframe_request(raw: Any, video: bool) -> Body:
    body = body_of(raw)
    kind = "reframe_video" if video else "reframe_image"
    check_type(body, kind)
    models = catalog.EDIT_VIDEO_MODELS if video else catalog.IMAGE_MODELS
    out: Body = {
        "generation_type": kind,
        "model": _requiredchoice(body, "model", models),
        "aspect_ratio": _requiredchoice(body, "aspect_ratio", catalog.ASPECT_RATIOS),
        "media": url_object(body, "media", required=True),
        "prompt": prompt_of(body, required=False),
        "callback_url": callback(body),
    }
    if video:
        out["first_frame"] = url_object(body, "first_frame", required=False)
    else:
        out["format"] = choice(body, "format", catalog.IMAGE_FORMATS, "jpg")
    for key in _REFRAME_INTS:
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise bad(f"Invalid {key}: must be an integer")
        out[key] = value
    return out


def _requiredchoice(body: Body, key: str, allowed: tuple[str, ...]) -> str:
    if body.get(key) is None:
        raise bad(f"{key} is required")
    value = choice(body, key, allowed, None)
    assert value is not None
    return value
