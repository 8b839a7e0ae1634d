"""Luma's submit-time checks: each function returns the request as the Generation echoes it
(defaults filled, absent keys null) or raises ApiError(400, message).

Messages follow API.md; those not documented there are the sandbox's wording [unconfirmed].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dreamnodes.sandbox import catalog
from dreamnodes.sandbox.errors import ApiError

Body = dict[str, Any]
# id -> the stored Generation dict, or None
Lookup = Callable[[str], "dict[str, Any] | None"]


def bad(detail: str) -> ApiError:
    return ApiError(400, detail)


def body_of(body: Any) -> Body:
    if not isinstance(body, dict):
        raise bad("Request body must be a JSON object")
    return body


def choice(body: Body, key: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = body.get(key)
    if value is None:
        return default
    if value not in allowed:
        raise bad(f"Invalid {key}: {value!r}. Allowed values: {', '.join(allowed)}")
    return str(value)


def prompt_of(body: Body, required: bool) -> str | None:
    prompt = body.get("prompt")
    if prompt is None or prompt == "":
        if required:
            raise bad("Prompt is required")
        return None
    if not isinstance(prompt, str):
        raise bad("Prompt must be a string")
    if len(prompt) < catalog.PROMPT_MIN:
        raise bad("Prompt is too short, minimum length is 3 characters")
    if len(prompt) > catalog.PROMPT_MAX:
        raise bad("Prompt is too long, maximum length is 5000 characters")
    return prompt


def callback(body: Body) -> str | None:
    url = body.get("callback_url")
    if url is None:
        return None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise bad("Invalid callback_url: must be an http(s) URL")
    return url


def _bool(body: Body, key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad(f"Invalid {key}: must be a boolean")
    return value


def check_type(body: Body, expected: str) -> None:
    value = body.get("generation_type")
    if value is not None and value != expected:
        raise bad("Unknown request type")


def url_object(body: Body, key: str, required: bool) -> dict[str, str] | None:
    value = body.get(key)
    if value is None:
        if required:
            raise bad(f"{key} is required")
        return None
    if not isinstance(value, dict) or not isinstance(value.get("url"), str) or not value["url"]:
        raise bad(f"Invalid {key}: expected an object with a url")
    return {"url": value["url"]}


def _keyframe(name: str, frame: Any, lookup: Lookup) -> dict[str, str]:
    if not isinstance(frame, dict):
        raise bad(f"Invalid keyframe {name}: expected an object")
    kind = frame.get("type")
    if kind == "image":
        url = frame.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise bad(f"Invalid keyframe {name}: image keyframes need an http(s) url")
        return {"type": "image", "url": url}
    if kind == "generation":
        ref = frame.get("id")
        if not isinstance(ref, str) or not ref:
            raise bad(f"Invalid keyframe {name}: generation keyframes need an id")
        source = lookup(ref)
        if source is None or source.get("generation_type") != "video":
            raise bad(f"Generation {ref} not found")
        if source.get("state") != "completed":
            raise bad(
                "Extend is currently supported only for completed generations"
                f" (generation {ref} is {source.get('state')})"
            )
        return {"type": "generation", "id": ref}
    raise bad(f"Invalid keyframe {name}: type must be 'image' or 'generation'")


def _keyframes(body: Body, lookup: Lookup) -> dict[str, Any] | None:
    raw = body.get("keyframes")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad("Invalid keyframes: expected an object with frame0 and/or frame1")
    unknown = set(raw) - {"frame0", "frame1"}
    if unknown:
        raise bad(f"Invalid keyframes: unknown key {sorted(unknown)[0]!r}")
    frames = {k: _keyframe(k, v, lookup) for k, v in raw.items() if v is not None}
    if not frames:
        raise bad("No keyframes provided")
    return {"frame0": frames.get("frame0"), "frame1": frames.get("frame1")}


def _loop_refusal(keyframes: dict[str, Any] | None) -> str | None:
    if keyframes is None:
        return None
    f0, f1 = keyframes.get("frame0"), keyframes.get("frame1")
    t0 = f0["type"] if f0 else None
    t1 = f1["type"] if f1 else None
    if t0 == "generation" and t1 is not None:
        return "Loop is not supported for interpolate"
    if t1 == "generation":
        return (
            "Loop is not supported for interpolate"
            if t0 is not None
            else "Loop is not supported for extend reverse"
        )
    if t1 == "image":
        return (
            "Loop is not supported for keyframes" if t0 else "Loop is not supported for end frame"
        )
    return None


def video_request(raw: Any, lookup: Lookup) -> Body:
    body = body_of(raw)
    check_type(body, "video")
    model = body.get("model")
    if model is None:
        raise bad("Model is required")
    if model not in catalog.VIDEO_MODELS:
        raise bad(f"Invalid model: {model!r}. Allowed values: {', '.join(catalog.VIDEO_MODELS)}")
    keyframes = _keyframes(body, lookup)
    has_image = keyframes is not None and any(
        f is not None and f["type"] == "image" for f in keyframes.values()
    )
    prompt = prompt_of(body, required=not has_image)
    legacy = model == "ray-1-6"
    if legacy and (body.get("duration") is not None or body.get("resolution") is not None):
        raise bad("400: duration and resolution are not supported for this model")
    duration = None if legacy else choice(body, "duration", catalog.DURATIONS, "5s")
    resolution = (
        None
        if legacy
        else choice(body, "resolution", catalog.RESOLUTIONS, catalog.DEFAULT_RESOLUTION)
    )
    concepts = _concepts(body, legacy)
    loop = _bool(body, "loop")
    if loop:
        refusal = _loop_refusal(keyframes)
        if refusal:
            raise bad(refusal)
    return {
        "generation_type": "video",
        "model": model,
        "prompt": prompt,
        "aspect_ratio": choice(body, "aspect_ratio", catalog.ASPECT_RATIOS, "16:9"),
        "loop": loop,
        "resolution": resolution,
        "duration": duration,
        "keyframes": keyframes,
        "concepts": concepts,
        "callback_url": callback(body),
    }


def _concepts(body: Body, legacy: bool) -> list[dict[str, str]] | None:
    raw = body.get("concepts")
    if raw is None:
        return None
    if legacy:
        raise bad("400: concepts are not supported for this model")
    if not isinstance(raw, list):
        raise bad("Invalid concepts: expected a list of {key}")
    out = []
    for item in raw:
        key = item.get("key") if isinstance(item, dict) else None
        if key not in catalog.CONCEPTS:
            raise bad(f"Invalid concept: {key!r}")
        out.append({"key": str(key)})
    return out


def _weighted(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("url"), str):
        raise bad(f"Invalid {key}: expected {{url, weight}}")
    weight = value.get("weight", 0.85)
    if not isinstance(weight, int | float) or isinstance(weight, bool) or not 0 <= weight <= 1:
        raise bad(f"Invalid {key}: weight must be between 0 and 1")
    return {"url": value["url"], "weight": float(weight)}


def image_request(raw: Any) -> Body:
    body = body_of(raw)
    check_type(body, "image")
    image_ref = body.get("image_ref")
    if image_ref is not None:
        if not isinstance(image_ref, list) or len(image_ref) > 4:
            raise bad("Invalid image_ref: up to 4 images")
        image_ref = [_weighted(v, "image_ref") for v in image_ref]
    style_ref = body.get("style_ref")
    if style_ref is not None:
        if not isinstance(style_ref, list):
            raise bad("Invalid style_ref: expected a list")
        style_ref = [_weighted(v, "style_ref") for v in style_ref]
    character_ref = body.get("character_ref")
    if character_ref is not None:
        images = (
            character_ref.get("identity0", {}).get("images")
            if isinstance(character_ref, dict) and isinstance(character_ref.get("identity0"), dict)
            else None
        )
        if not isinstance(images, list) or not 1 <= len(images) <= 4:
            raise bad("Invalid character_ref: identity0.images must list 1 to 4 urls")
        character_ref = {"identity0": {"images": [str(u) for u in images]}}
    modify = body.get("modify_image_ref")
    modify_ref = _weighted(modify, "modify_image_ref") if modify is not None else None
    sync_timeout = body.get("sync_timeout")
    if sync_timeout is not None and not isinstance(sync_timeout, int | float):
        raise bad("Invalid sync_timeout: must be a number of seconds")
    return {
        "generation_type": "image",
        "model": choice(body, "model", catalog.IMAGE_MODELS, "photon-1"),
        "prompt": prompt_of(body, required=True),
        "aspect_ratio": choice(body, "aspect_ratio", catalog.ASPECT_RATIOS, "16:9"),
        "format": choice(body, "format", catalog.IMAGE_FORMATS, "jpg"),
        "image_ref": image_ref,
        "style_ref": style_ref,
        "character_ref": character_ref,
        "modify_image_ref": modify_ref,
        "sync": _bool(body, "sync"),
        "sync_timeout": sync_timeout,
        "callback_url": callback(body),
    }
