"""Glue between the lifecycle and the media module: fetch inputs, render off the event loop.

When `dreamnodes.sandbox.media` cannot be imported (or `render=False`), assets are tiny
placeholders: an MP4 that is only an `ftyp` box, and a 1x1 image.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib
import io
import os
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import httpx

PLACEHOLDER_MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


class InputError(Exception):
    """A keyframe or media URL could not be read."""


def media() -> ModuleType | None:
    try:
        return importlib.import_module("dreamnodes.sandbox.media")
    except ImportError:
        return None


@functools.cache
def placeholder_image(fmt: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1, 1), (40, 40, 60)).save(out, format="PNG" if fmt == "png" else "JPEG")
    return out.getvalue()


def render_slots() -> asyncio.Semaphore:
    """How many renders may run at once (one per core); one per event loop."""
    return asyncio.Semaphore(max(1, os.cpu_count() or 2))


async def fetch(
    url: str,
    timeout: float,
    local: Callable[[str], Awaitable[bytes | None]],
) -> bytes:
    """Download a user-supplied URL (or read the sandbox's own asset directly)."""
    own = await local(url)
    if own is not None:
        return own
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
            response = await client.get(url)
    except (httpx.HTTPError, ValueError) as exc:
        raise InputError(str(exc)) from exc
    if response.status_code != 200 or not response.content:
        raise InputError(f"HTTP {response.status_code}")
    return response.content


def _first_frame_jpeg(video: bytes) -> bytes | None:
    mod = media()
    if mod is None:
        return None
    try:
        codec = importlib.import_module("dreamnodes.sandbox.media.codec")
        from PIL import Image

        first, _ = codec.first_and_last_frame(video)
        out = io.BytesIO()
        Image.fromarray(first).save(out, format="JPEG", quality=90)
        return out.getvalue()
    except Exception:
        return None


async def first_frame_jpeg(video: bytes) -> bytes | None:
    return await asyncio.to_thread(_first_frame_jpeg, video)


async def render_video(slots: asyncio.Semaphore, enabled: bool, **spec: Any) -> bytes:
    """Render with media.render_video(VideoSpec(**spec)) in a worker thread."""
    mod = media() if enabled else None
    if mod is None:
        return PLACEHOLDER_MP4
    fields = {f.name for f in dataclasses.fields(mod.VideoSpec)}
    video_spec = mod.VideoSpec(**{k: v for k, v in spec.items() if k in fields})
    async with slots:
        data: bytes = await asyncio.to_thread(mod.render_video, video_spec)
    return data


async def render_image(
    slots: asyncio.Semaphore,
    enabled: bool,
    prompt: str,
    aspect_ratio: str,
    fmt: str,
    refs: tuple[bytes, ...],
    full: bool,
) -> bytes:
    mod = media() if enabled else None
    if mod is None:
        return placeholder_image(fmt)
    async with slots:
        try:
            data: bytes = await asyncio.to_thread(
                mod.render_image, prompt, aspect_ratio, fmt, refs, full_size=full
            )
        except TypeError:
            data = await asyncio.to_thread(mod.render_image, prompt, aspect_ratio, fmt, refs)
    return data
