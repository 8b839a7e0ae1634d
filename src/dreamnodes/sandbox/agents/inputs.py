"""Fetching what a create points at, while the create is answered (as Luma does: a URL that
cannot be fetched, bad base64 or a non-image is a 422 at once); decoding comes later, in the
job, where a bad input becomes a failure code."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dreamnodes.sandbox import rendering
from dreamnodes.sandbox.agents import catalog, media_check
from dreamnodes.sandbox.agents.refs import Position, bad

_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


@dataclass(frozen=True)
class Input:
    data: bytes
    mime: str | None
    video: bool


def looks_like_image(data: bytes) -> bool:
    return data.startswith(_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


OwnBytes = Callable[[str, dict[str, Any]], Awaitable[tuple[bytes, str] | None]]


class Resolver:
    """`own(owner, ref)`: bytes and MIME type of a file_id or generation_id ref of the caller."""

    def __init__(self, own: OwnBytes, timeout: float) -> None:
        self._own = own
        self._timeout = timeout

    async def _none(self, url: str) -> bytes | None:
        return None

    async def one(self, ref: dict[str, Any], path: str, position: Position, owner: str) -> Input:
        mime = ref.get("media_type")
        if "url" in ref:
            try:
                data = await rendering.fetch(ref["url"], self._timeout, self._none)
            except rendering.InputError as exc:
                raise bad(path, f"could not fetch URL ({exc})", 422) from None
        elif "data" in ref:
            data = base64.b64decode(ref["data"])
        else:
            found = await self._own(owner, ref)
            if found is None:  # deleted or gone between validation and now
                raise bad(path, "referenced media is no longer available")
            data, mime = found
        is_video = position == "video" or (mime or "").startswith("video/")
        if not is_video and not looks_like_image(data):
            raise bad(path, "URL did not return an image" if "url" in ref else "not an image", 422)
        return Input(data, mime, is_video)

    async def all(self, request: dict[str, Any], owner: str) -> dict[str, Any]:
        """Every input of a validated request, by role."""
        out: dict[str, Any] = {"image_ref": []}
        for n, ref in enumerate(request["image_ref"]):
            out["image_ref"].append(await self.one(ref, f"image_ref[{n}]", "image", owner))
        kind = request["type"]
        if request["source"] is not None:
            position: Position = "video" if kind in ("video_edit", "video_reframe") else "image"
            out["source"] = await self.one(request["source"], "source", position, owner)
            if kind == "video_edit":
                await self._check_length(out["source"])
        video = request.get("video") or {}
        for role in ("start_frame", "end_frame"):
            if video.get(role):
                out[role] = await self.one(video[role], f"video.{role}", "frame", owner)
        edit = video.get("edit") or {}
        blocks = (
            ("keyframes", video.get("keyframes"), "video"),
            ("edit_keyframes", edit.get("keyframes"), "video.edit"),
        )
        for role, block, where in blocks:
            if block:
                out[role] = [
                    await self.one(ref, f"{where}.keyframes[{n}]", "image", owner)
                    for n, ref in enumerate(block["frames"])
                ]
        return out

    @staticmethod
    async def _check_length(source: Input) -> None:
        seconds, verdict = await asyncio.to_thread(media_check.check_video, source.data)
        if verdict is None and seconds > catalog.MAX_EDIT_SOURCE_S + 0.05:
            raise bad("source", f"the source video must be 18 seconds or shorter ({seconds:.1f} s)")
