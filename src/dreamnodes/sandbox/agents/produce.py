"""A job's outputs from its request and inputs (run in a worker thread): decode the inputs
(an unusable one is a failure code), then render the clip, the picture or the layers.

With `render=False`, or without the media extra, outputs are tiny placeholders.
"""

from __future__ import annotations

import importlib
import io
from dataclasses import dataclass
from typing import Any

from dreamnodes.sandbox import rendering
from dreamnodes.sandbox.agents import media_check
from dreamnodes.sandbox.agents.inputs import Input


class Failure(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass(frozen=True)
class Output:
    data: bytes
    content_type: str
    kind: str  # "image" or "video"
    layer: dict[str, Any] | None = None

    @property
    def ext(self) -> str:
        return {"video/mp4": "mp4", "image/png": "png", "image/jpeg": "jpg"}[self.content_type]


def _picture(item: Input) -> Any:
    image, verdict = media_check.check_image(item.data, item.mime)
    if verdict is not None:
        raise Failure(*verdict)
    return image


def _video(item: Input) -> bytes:
    _, verdict = media_check.check_video(item.data)
    if verdict is not None:
        raise Failure(*verdict)
    return item.data


def _placeholder_layer() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGBA", (1, 1), (40, 40, 60, 0)).save(out, format="PNG")
    return out.getvalue()


def produce(
    request: dict[str, Any], inputs: dict[str, Any], render: bool, full: bool
) -> list[Output]:
    kind = request["type"]
    images = importlib.import_module("dreamnodes.sandbox.agents.render_image") if render else None
    if kind in ("image", "image_edit"):
        fmt = request["output_format"] or "jpeg"
        content_type = "image/png" if fmt == "png" else "image/jpeg"
        refs = tuple(_picture(item) for item in inputs["image_ref"])
        source = _picture(inputs["source"]) if "source" in inputs else None
        if images is None:
            return [Output(rendering.placeholder_image(fmt), content_type, "image")]
        data = images.render_picture(
            request["prompt"], request["aspect_ratio"], fmt, full, source, refs
        )
        return [Output(data, content_type, "image")]
    if kind == "layering":
        source = _picture(inputs["source"])
        if images is None:
            from dreamnodes.sandbox.agents.render_image import LAYERS

            return [
                Output(_placeholder_layer(), "image/png", "image", _meta(n, label, hint, text))
                for n, (label, hint, text) in enumerate(LAYERS)
            ]
        layers = images.render_layers(
            request["prompt"], source, request["layering"]["resolution"], full
        )
        return [Output(data, "image/png", "image", meta) for data, meta in layers]
    return [Output(_clip(request, inputs, render, full), "video/mp4", "video")]


def _meta(index: int, label: str, hint: str, text: str) -> dict[str, Any]:
    return {"index": index, "label": label, "description": text, "alpha_hint": hint}


def _clip(request: dict[str, Any], inputs: dict[str, Any], render: bool, full: bool) -> bytes:
    video, kind = request["video"], request["type"]
    for item in inputs["image_ref"]:
        _picture(item)
    if not render:
        for role in ("start_frame", "end_frame", "source"):
            item = inputs.get(role)
            if item is not None and item.video:
                _video(item)
            elif item is not None:
                _picture(item)
        return rendering.PLACEHOLDER_MP4
    clips = importlib.import_module("dreamnodes.sandbox.agents.render_video")
    spec = clips.ClipSpec(
        prompt=request["prompt"],
        aspect_ratio=request["aspect_ratio"] or "16:9",
        resolution=video["resolution"],
        full=full,
        duration_s=float(video["duration"].rstrip("s")),
        loop=video["loop"],
    )
    last = round(spec.duration_s * clips.FPS)
    for role, index in (("start_frame", 0), ("end_frame", last)):
        item = inputs.get(role)
        if item is None:
            continue
        if item.video:  # extension: forward from the source's last frame, back to its first
            first, final = clips.first_and_last(_video(item))
            spec.anchors.append((index, final if role == "start_frame" else first))
        else:
            spec.anchors.append((index, _picture(item)))
    edit = video.get("edit") or {}
    block = video.get("keyframes") if kind == "video" else edit.get("keyframes")
    role = "keyframes" if kind == "video" else "edit_keyframes"
    if block:
        pictures = [_picture(item) for item in inputs[role]]
        spec.anchors.extend(zip(block["indexes"], pictures, strict=True))
    if kind in ("video_edit", "video_reframe"):
        spec.mode = "edit" if kind == "video_edit" else "reframe"
        spec.source = _video(inputs["source"])
        spec.strength = (video.get("edit") or {}).get("strength")
        spec.position = video.get("source_position")
        if kind == "video_reframe" and request["aspect_ratio"] is None:
            spec.aspect_ratio = "16:9"
    try:
        data: bytes = clips.render_clip(spec)
    except Exception as exc:  # an unreadable source that passed the probe, an encoder error
        raise Failure("generation_failed", f"Internal model error: {exc}") from exc
    return data
