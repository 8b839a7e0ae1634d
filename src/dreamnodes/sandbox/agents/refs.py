"""ImageRef checks: exactly one of url, data, generation_id, file_id, and what each may point at.

Positions: `image` (image_ref[], image_edit/layering source, keyframes), `frame`
(video.start_frame/end_frame: an image, or a video generation to extend) and `video`
(video_edit/video_reframe source: video media, a video file or a video generation).
Texts start with the field path as Luma's do; the rest of each text is the sandbox's wording.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal, Protocol

from dreamnodes.sandbox.errors import ApiError

Position = Literal["image", "frame", "video"]
_KEYS = ("url", "data", "generation_id", "file_id")


class Owned(Protocol):
    """What the validator may look up: the caller's own files and generations."""

    def file_record(self, owner: str, file_id: str) -> dict[str, Any] | None: ...

    def generation_record(self, owner: str, gen_id: str) -> dict[str, Any] | None: ...


def bad(path: str, text: str, status: int = 400) -> ApiError:
    return ApiError(status, f"{path}: {text}")


def _string(ref: dict[str, Any], key: str, path: str) -> str | None:
    value = ref.get(key)
    if value is not None and not isinstance(value, str):
        raise bad(f"{path}.{key}", "must be a string")
    return value


def check_ref(
    ref: Any, path: str, position: Position, kind: str, owner: str, owned: Owned
) -> dict[str, Any]:
    """The reference, checked; raises ApiError(400 or 422) with Luma-style text."""
    if not isinstance(ref, dict):
        raise bad(path, "must be an object")
    given = [key for key in _KEYS if ref.get(key) is not None]
    if len(given) != 1:
        raise bad(path, "provide exactly one of url, data, generation_id or file_id")
    for key in (*_KEYS, "media_type"):
        _string(ref, key, path)
    media_type = ref.get("media_type")
    key = given[0]
    if key in ("url", "data"):
        _check_media(ref, key, path, position, kind, media_type)
    elif key == "file_id":
        _check_file(owned.file_record(owner, ref["file_id"]), ref["file_id"], path, position)
    else:
        gen_id = ref["generation_id"]
        _check_generation(owned.generation_record(owner, gen_id), gen_id, path, position)
    return {k: ref[k] for k in (*_KEYS, "media_type") if ref.get(k) is not None}


def _check_media(
    ref: dict[str, Any], key: str, path: str, position: Position, kind: str, media_type: str | None
) -> None:
    if key == "data":
        if not media_type:
            raise bad(path, "media_type is required with data")
        try:
            base64.b64decode(ref["data"], validate=True)
        except (binascii.Error, ValueError):
            raise bad(path, "data is not valid base64", 422) from None
    elif not ref["url"].lower().startswith(("http://", "https://")):
        raise bad(path, "url must be an http or https URL", 422)
    if position == "video":
        if not media_type:
            raise bad(path, f"media_type is required with {key} for type '{kind}'")
        if not media_type.startswith("video/"):
            raise bad(path, f"media_type must be a video/* type for type '{kind}'")
    elif media_type and not media_type.startswith("image/"):
        raise bad(path, f"media_type must be an image/* type, got '{media_type}'")


def _check_file(record: dict[str, Any] | None, file_id: str, path: str, position: Position) -> None:
    if record is None:
        raise bad(path, f"file '{file_id}' not found")
    state = record["file"]["state"]
    if state == "deleted":
        raise bad(path, f"file '{file_id}' has been deleted")
    if state != "ready":
        raise bad(path, f"file '{file_id}' is not ready (state: {state})")
    mime = record["file"]["mime_type"]
    wanted = "video/" if position == "video" else "image/"
    if not mime.startswith(wanted):
        raise bad(path, f"file '{file_id}' is {mime}; a {wanted}* file is required here")


def _check_generation(
    record: dict[str, Any] | None, gen_id: str, path: str, position: Position
) -> None:
    if record is None:
        raise bad(path, f"generation '{gen_id}' not found")
    state = record["gen"]["state"]
    if state != "completed":
        raise bad(path, f"generation '{gen_id}' is not completed (state: {state})")
    is_video = record["gen"]["type"] in ("video", "video_edit", "video_reframe")
    if position == "image" and is_video:
        raise bad(path, f"generation '{gen_id}' is a video; an image generation is required")
    if position in ("video", "frame") and not is_video:
        raise bad(path, f"generation '{gen_id}' is an image; a video generation is required")
