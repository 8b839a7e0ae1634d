"""POST /generations: the body checked against the per-model rules, with Luma's wording where it
is known (prompt length, unknown model, model/type mismatch) and Luma's style elsewhere (the
text starts with the field path). Returns the normalised request the job works from.
"""

from __future__ import annotations

from typing import Any

from dreamnodes.sandbox.agents import catalog
from dreamnodes.sandbox.agents.refs import Owned, Position, bad, check_ref
from dreamnodes.sandbox.agents.video import check_video
from dreamnodes.sandbox.errors import ApiError

Body = dict[str, Any]
_SOURCE_TYPES = ("image_edit", "video_edit", "video_reframe", "layering")


def _enum(body: Body, key: str, allowed: tuple[str, ...], default: str | None = None) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if value not in allowed:
        raise bad(key, f"'{value}' is not one of {', '.join(allowed)}")
    return value


def _bool(body: Body, key: str, path: str) -> bool:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise bad(path, "must be a boolean")
    return bool(value)


def check_create(body: Any, owner: str, owned: Owned, hdr_access: bool = True) -> Body:
    """The normalised request, or ApiError (400/422) for the first rule it breaks."""
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    kind = _enum(body, "type", catalog.TYPES, "image")
    model = body.get("model", "uni-1")
    if model is None:
        model = "uni-1"
    if model not in catalog.MODELS:
        raise ApiError(400, f"Unknown model: {model}")
    if kind not in catalog.MODEL_TYPES[model]:
        raise ApiError(400, f"Type '{kind}' is not supported for model '{model}'")
    prompt = _prompt(body.get("prompt"), kind)
    ratio = body.get("aspect_ratio")
    if ratio is not None and ratio not in catalog.MODEL_RATIOS[model]:
        allowed = ", ".join(catalog.MODEL_RATIOS[model])
        raise bad("aspect_ratio", f"'{ratio}' is not supported for model '{model}' ({allowed})")
    out: Body = {
        "prompt": prompt,
        "type": kind,
        "model": model,
        "aspect_ratio": ratio,
        "style": _enum(body, "style", catalog.STYLES, "auto"),
        "output_format": _enum(body, "output_format", catalog.OUTPUT_FORMATS),
        "web_search": _bool(body, "web_search", "web_search"),
        "user_id": _user_id(body.get("user_id")),
    }
    video_kind = kind in catalog.VIDEO_TYPES
    if video_kind and out["output_format"] is not None:
        raise bad("output_format", f"not supported for type '{kind}' (videos are MP4)")
    if video_kind and out["style"] != "auto":
        raise bad("style", f"not supported for type '{kind}'")
    out["image_ref"] = _image_refs(body.get("image_ref"), kind, owner, owned)
    out["source"] = _source(body.get("source"), kind, owner, owned)
    out["layering"] = _layering(body.get("layering"), kind)
    video = body.get("video")
    if video is not None and not video_kind:
        raise bad("video", f"only valid for video, video_edit and video_reframe, not '{kind}'")
    if video_kind:
        out["video"] = check_video(video or {}, kind, ratio, owner, owned, hdr_access)
    return out


def _prompt(prompt: Any, kind: str) -> str:
    if prompt is None:
        prompt = ""
    if not isinstance(prompt, str):
        raise bad("prompt", "must be a string")
    if kind == "layering":
        if len(prompt) > catalog.MAX_LAYERING_PROMPT:
            raise bad("prompt", "must be at most 500 characters for type 'layering'")
        return prompt
    if not 1 <= len(prompt) <= catalog.MAX_PROMPT:
        raise ApiError(400, "Prompt must be between 1 and 6000 characters")
    return prompt


def _user_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad("user_id", "must be a string")
    if len(value) > catalog.MAX_USER_ID:
        raise bad("user_id", "must be at most 256 characters")
    return value


def _image_refs(refs: Any, kind: str, owner: str, owned: Owned) -> list[dict[str, Any]]:
    if refs is None:
        return []
    if not isinstance(refs, list):
        raise bad("image_ref", "must be an array")
    if not refs:
        return []
    limit = catalog.MAX_IMAGE_REFS.get(kind)
    if limit is None:
        raise bad("image_ref", f"not supported for type '{kind}'")
    if len(refs) > limit:
        raise bad("image_ref", f"at most {limit} reference images for type '{kind}'")
    return [
        check_ref(ref, f"image_ref[{n}]", "image", kind, owner, owned) for n, ref in enumerate(refs)
    ]


def _source(source: Any, kind: str, owner: str, owned: Owned) -> dict[str, Any] | None:
    if source is None:
        if kind in _SOURCE_TYPES:
            raise bad("source", f"required for type '{kind}'")
        return None
    if kind not in _SOURCE_TYPES:
        raise bad("source", "only valid for types image_edit, video_edit, video_reframe, layering")
    position: Position = "video" if kind in ("video_edit", "video_reframe") else "image"
    return check_ref(source, "source", position, kind, owner, owned)


def _layering(options: Any, kind: str) -> dict[str, Any] | None:
    if options is None:
        return {"resolution": "1k"} if kind == "layering" else None
    if kind != "layering":
        raise bad("layering", f"only valid for type 'layering', not '{kind}'")
    if not isinstance(options, dict):
        raise bad("layering", "must be an object")
    resolution = options.get("resolution") or "1k"
    if resolution not in catalog.LAYERING_RESOLUTIONS:
        raise bad("layering.resolution", f"'{resolution}' is not one of 1k, 2k")
    return {"resolution": resolution}
