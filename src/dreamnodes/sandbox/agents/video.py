"""The `video` options of a Ray 3.2 create: loop, HDR/EXR, draft tier, start/end frames,
keyframes on the 24 fps grid, reframe's source_position and video_edit's `edit` block."""

from __future__ import annotations

from typing import Any

from dreamnodes.sandbox.agents import catalog
from dreamnodes.sandbox.agents.refs import Owned, Position, bad, check_ref

Options = dict[str, Any]


def _flag(video: Options, key: str) -> bool:
    value = video.get(key)
    if value is not None and not isinstance(value, bool):
        raise bad(f"video.{key}", "must be a boolean")
    return bool(value)


def _choice(video: Options, key: str, allowed: tuple[str, ...], default: str) -> str:
    value = video.get(key)
    if value is None:
        return default
    if value not in allowed:
        raise bad(f"video.{key}", f"'{value}' is not one of {', '.join(allowed)}")
    return str(value)


def check_video(
    video: Any, kind: str, ratio: str | None, owner: str, owned: Owned, hdr_access: bool
) -> Options:
    if not isinstance(video, dict):
        raise bad("video", "must be an object")
    out: Options = {
        "duration": _choice(video, "duration", catalog.DURATIONS, "5s"),
        "resolution": _choice(video, "resolution", catalog.RESOLUTIONS, "720p"),
        "hdr": _flag(video, "hdr"),
        "exr_export": _flag(video, "exr_export"),
        "loop": _flag(video, "loop"),
    }
    _check_flags(out, kind, hdr_access)

    def ref(key: str, position: Position) -> dict[str, Any] | None:
        value = video.get(key)
        if value is None:
            return None
        return check_ref(value, f"video.{key}", position, kind, owner, owned)

    out["start_frame"], out["end_frame"] = ref("start_frame", "frame"), ref("end_frame", "frame")
    _check_frames(out, kind)
    keyframes = _keyframes(video, "video", kind, owner, owned, out["duration"])
    if keyframes is not None:
        if kind != "video":
            raise bad("video.keyframes", "only for type 'video' (edits use video.edit.keyframes)")
        if out["start_frame"] or out["end_frame"]:
            raise bad("video.keyframes", "cannot be combined with start_frame or end_frame")
        if out["loop"]:
            raise bad("video.keyframes", "cannot be combined with loop")
    out["keyframes"] = keyframes
    out["source_position"] = _source_position(video.get("source_position"), kind)
    out["edit"] = _edit(video.get("edit"), kind, out, owner, owned)
    if kind == "video_reframe" and out["resolution"] == "1080p" and ratio in ("9:16", "3:4"):
        raise bad("video.resolution", "1080p reframe is coming soon for portrait targets")
    return out


def _check_flags(out: Options, kind: str, hdr_access: bool) -> None:
    if out["loop"]:
        if kind != "video":
            raise bad("video.loop", f"only supported for type 'video', not '{kind}'")
        if out["duration"] == "10s":
            raise bad("video.loop", "not supported with duration 10s")
        if out["hdr"]:
            raise bad("video.loop", "not supported with hdr")
    if out["exr_export"] and not out["hdr"]:
        raise bad("video.exr_export", "requires hdr=true")
    if out["hdr"]:
        if kind == "video_reframe":
            raise bad("video.hdr", "not supported for type 'video_reframe'")
        if not hdr_access:
            raise bad("video.hdr", "HDR access is not enabled for this API client")
        if out["resolution"] not in catalog.HDR_RESOLUTIONS:
            raise bad("video.hdr", f"requires resolution 720p or 1080p, not {out['resolution']}")


def _check_frames(out: Options, kind: str) -> None:
    start, end = out["start_frame"], out["end_frame"]
    if kind == "video_reframe" and (start or end):
        raise bad("video.start_frame" if start else "video.end_frame", "not supported for reframe")
    if kind == "video_edit" and end:
        raise bad("video.end_frame", "not supported for type 'video_edit'")
    if kind == "video" and (start or end):
        # [inferred] the legacy two-frame surface has neither 10s nor HDR (keyframes have both)
        if out["duration"] == "10s":
            raise bad("video.duration", "10s is not supported with start_frame/end_frame")
        if out["hdr"]:
            raise bad("video.hdr", "not supported with start_frame/end_frame")


def _keyframes(
    block: Options, where: str, kind: str, owner: str, owned: Owned, duration: str | None
) -> dict[str, Any] | None:
    """`keyframes` + `keyframe_indexes` of `block` (video or video.edit), or None if absent."""
    frames, indexes = block.get("keyframes"), block.get("keyframe_indexes")
    if frames is None and indexes is None:
        return None
    if not isinstance(frames, list) or not 1 <= len(frames) <= catalog.MAX_KEYFRAMES:
        raise bad(f"{where}.keyframes", "must be a list of 1 to 64 image references")
    if not isinstance(indexes, list) or len(indexes) != len(frames):
        raise bad(f"{where}.keyframe_indexes", "must have the same length as keyframes")
    top = catalog.FPS * int(duration.rstrip("s")) if duration else None
    for n, index in enumerate(indexes):
        path = f"{where}.keyframe_indexes[{n}]"
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise bad(path, "must be a non-negative integer")
        if top is not None and index > top:
            raise bad(path, f"{index} is outside 0..{top} for duration {duration}")
    if len(set(indexes)) != len(indexes):
        raise bad(f"{where}.keyframe_indexes", "must be unique")
    refs = [
        check_ref(frame, f"{where}.keyframes[{n}]", "image", kind, owner, owned)
        for n, frame in enumerate(frames)
    ]
    return {"frames": refs, "indexes": list(indexes)}


def _number(value: Any, path: str, low: float | None, high: float | None) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise bad(path, "must be a number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise bad(path, f"must be between {low} and {high}")
    return float(value)


def _source_position(position: Any, kind: str) -> dict[str, float] | None:
    if position is None:
        return None
    if kind != "video_reframe":
        raise bad("video.source_position", "only valid for type 'video_reframe'")
    if not isinstance(position, dict):
        raise bad("video.source_position", "must be an object")
    out = {}
    for key in ("x_norm", "y_norm", "w_norm", "h_norm"):
        path = f"video.source_position.{key}"
        if position.get(key) is None:
            raise bad(path, "is required")
        sized = key in ("w_norm", "h_norm")
        out[key] = _number(position[key], path, None, 2.0 if sized else None)
        if sized and out[key] <= 0:
            raise bad(path, "must be greater than 0")
    return out


_CONTROLS = {
    "depth": "blur",
    "face": None,
    "normals": "augmentation",
    "pose": None,
    "trajectory": "sparsity",
}


def _edit(edit: Any, kind: str, out: Options, owner: str, owned: Owned) -> Options | None:
    if edit is None:
        return None
    if kind != "video_edit":
        raise bad("video.edit", f"only valid for type 'video_edit', not '{kind}'")
    if not isinstance(edit, dict):
        raise bad("video.edit", "must be an object")
    auto = edit.get("auto_controls")
    if auto is not None and not isinstance(auto, bool):
        raise bad("video.edit.auto_controls", "must be a boolean")
    strength = edit.get("strength")
    if strength is not None and strength not in catalog.EDIT_STRENGTHS:
        allowed = ", ".join(catalog.EDIT_STRENGTHS)
        raise bad("video.edit.strength", f"'{strength}' is not one of {allowed}")
    controls = edit.get("controls")
    if controls is not None:
        if not isinstance(controls, dict):
            raise bad("video.edit.controls", "must be an object")
        for name, control in controls.items():
            _control(name, control)
    keyframes = _keyframes(edit, "video.edit", kind, owner, owned, None)
    if keyframes is not None and out["start_frame"]:
        raise bad("video.edit.keyframes", "cannot be combined with video.start_frame")
    manual = auto is None and (strength is not None or controls is not None)
    mode = "auto" if auto else "manual" if manual or auto is False else "default"
    return {"mode": mode, "strength": strength, "controls": controls, "keyframes": keyframes}


def _control(name: str, control: Any) -> None:
    path = f"video.edit.controls.{name}"
    if name not in _CONTROLS:
        raise bad(path, f"unknown control (one of {', '.join(_CONTROLS)})")
    if control is None:
        return
    if not isinstance(control, dict):
        raise bad(path, "must be an object")
    enabled = control.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise bad(f"{path}.enabled", "must be a boolean")
    amount = _CONTROLS[name]
    if amount is not None and control.get(amount) is not None:
        _number(control[amount], f"{path}.{amount}", 0.0, 1.0)
    if name == "pose" and control.get("strength") not in (None, *catalog.POSE_STRENGTHS):
        raise bad(f"{path}.strength", f"'{control['strength']}' is not one of precise, coarse")
