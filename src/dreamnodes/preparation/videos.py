"""The Video field of the video nodes: one way to name "the video I just made".

Extend, upscale, add audio, modify and reframe all take ``video``: the generation an earlier
step returned (``"{{steps.make}}"``, which works everywhere), its id, or its URL. It fills
the field the API wants (``generation_id``, ``video_url`` or ``media_url``), which still works
under its own name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamnodes.errors import DreamError

__all__ = ["VIDEO", "resolve_video"]

VIDEO = "video"
_BY_ID = "generation_id"
_BY_URL = ("video_url", "media_url")


def resolve_video(params: dict[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """params with ``video`` turned into the node's own field (``fields``: its properties)."""
    if VIDEO not in fields or VIDEO not in params:
        return params
    out = dict(params)
    video = out.pop(VIDEO)
    if video is None or video == "":
        return out
    target = next((name for name in (_BY_ID, *_BY_URL) if name in fields), None)
    if target is None:  # pragma: no cover - only video nodes declare the field
        return params
    if out.get(target) not in (None, ""):
        raise _bad(f"give the video once: as video or as {target}, not both")
    wants_id = target == _BY_ID
    if isinstance(video, Mapping):
        found = video.get("id") if wants_id else (video.get("assets") or {}).get("video")
        if not isinstance(found, str) or not found:
            what = "an id" if wants_id else f"a video yet (state {video.get('state')!r})"
            raise _bad(f"the generation given has no {what}; wait for it to complete")
        out[target] = found
        return out
    if not isinstance(video, str):
        raise _bad("expected a generation (an earlier step's output), its id or its URL")
    is_url = video.strip().lower().startswith(("http://", "https://"))
    if wants_id and is_url:
        raise _bad(
            "this node works on a generation, which a URL cannot name: give the generation"
            ' itself ("{{steps.NAME}}") or its id'
        )
    if not wants_id and not is_url:
        raise _bad(
            f"this node needs the video's URL, which an id does not give: give the generation"
            f' itself ("{{{{steps.NAME}}}}") or its assets.video URL (id given: {video!r})'
        )
    out[target] = video
    return out


def _bad(message: str) -> DreamError:
    return DreamError("invalid_input", f"{VIDEO}: {message}", field=VIDEO)
