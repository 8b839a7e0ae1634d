"""Value functions of the Luma Agents API's request mappings (``{"$fn": ...}`` in a node file).

- ``media_ref``: what a user types in an image or video field, as the API's ImageRef:
  an http(s) URL → ``{"url"}`` (videos get the ``media_type`` the API needs), ``file:<id>`` →
  ``{"file_id"}``, ``generation:<id>`` or a bare UUID (a step's ``id``) → ``{"generation_id"}``,
  a ``data:<type>;base64,...`` URI → ``{"data", "media_type"}``; anything else is a local path,
  mapped to ``{"upload": path, "media": ..., "field": ...}``: the runtime uploads it through the
  Files API and puts the ``file_id`` in its place before the request is sent.
- ``frame_indexes``: keyframe positions as frame indexes on Ray 3.2's 24 fps grid. A position is
  a frame index (``48``), seconds (``"2.5s"``) or a fraction of the clip (``"50%"``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dreamnodes.errors import DreamError

FPS = 24
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATA = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.*)$", re.DOTALL)
_VIDEO_TYPES = {".mov": "video/quicktime", ".webm": "video/webm", ".mp4": "video/mp4"}


def media_ref(value: Any, media: str = "image", field: str | None = None) -> dict[str, Any]:
    """The ImageRef for what a user gave in a media field (see the module docstring)."""
    text = str(value).strip()
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")):
        ref: dict[str, Any] = {"url": text}
        if media == "video":
            path = lowered.split("?", 1)[0]
            ext = path[path.rfind(".") :] if "." in path.rsplit("/", 1)[-1] else ""
            ref["media_type"] = _VIDEO_TYPES.get(ext, "video/mp4")
        return ref
    if lowered.startswith("file:"):
        return {"file_id": text[5:].strip()}
    if lowered.startswith("generation:"):
        return {"generation_id": text[11:].strip()}
    if _UUID.match(text):
        return {"generation_id": text}
    found = _DATA.match(text)
    if found:
        return {"data": found.group(2), "media_type": found.group(1)}
    out: dict[str, Any] = {"upload": text, "media": media}
    if field:
        out["field"] = field
    return out


def frame_index(at: Any, duration: Any, field: str = "keyframes") -> int:
    """One position (index, "2.5s" or "50%") as a frame index within the clip's grid."""
    seconds = _seconds(duration)
    last = round(seconds * FPS) if seconds is not None else None
    if isinstance(at, bool):
        raise _bad(field, f"{at!r} is not a position")
    if isinstance(at, int | float):
        if isinstance(at, float) and not at.is_integer():
            raise _bad(field, f"{at!r}: a frame index is a whole number (or give '2.5s' or '50%')")
        index = int(at)
    else:
        text = str(at).strip().lower()
        try:
            if text.endswith("%"):
                if last is None:
                    raise _bad(field, f"{at!r}: a fraction needs the clip's duration")
                index = round(float(text[:-1]) / 100 * last)
            elif text.endswith("s"):
                index = round(float(text[:-1]) * FPS)
            else:
                index = int(text)
        except ValueError:
            raise _bad(field, f"{at!r} is not a frame index, seconds ('2.5s') or '50%'") from None
    if index < 0 or (last is not None and index > last) or not math.isfinite(index):
        span = f"0..{last} (0 to {seconds:g} s at {FPS} fps)" if last is not None else ">= 0"
        raise _bad(field, f"{at!r} falls outside the clip: positions are frames {span}")
    return index


def frame_indexes(
    value: Sequence[Any],
    duration: Any = None,
    key: str = "at",
    field: str = "keyframes",
    fallback: Any = None,
) -> list[int]:
    """Every keyframe's position as a frame index; two keyframes may not share a frame.

    ``fallback`` is the clip's duration when ``duration`` is not given (the field's default).
    """
    duration = fallback if duration is None else duration
    out: list[int] = []
    for n, item in enumerate(value):
        at = item.get(key) if isinstance(item, Mapping) else item
        index = frame_index(at, duration, f"{field}[{n}].{key}")
        if index in out:
            raise _bad(f"{field}[{n}].{key}", f"{at!r} lands on frame {index}, already taken")
        out.append(index)
    return out


def _seconds(duration: Any) -> float | None:
    if duration is None:
        return None
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        return float(duration)
    try:
        return float(str(duration).strip().lower().removesuffix("s"))
    except ValueError:
        return None


def _bad(field: str, message: str) -> DreamError:
    return DreamError("invalid_input", f"{field}: {message}", field=field.split("[")[0])


FUNCTIONS: dict[str, Callable[..., Any]] = {"media_ref": media_ref, "frame_indexes": frame_indexes}
