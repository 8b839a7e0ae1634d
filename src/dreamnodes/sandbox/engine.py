"""The life of a generation: create (charge, count), queued -> dreaming -> completed | failed,
rendering while dreaming, callbacks on each change, and the rendered assets.

Upscale and audio make a NEW generation [unconfirmed]: its `request` echoes the upscale/audio
body and its extra top-level field `source_generation_id` names the source. Failed
generations are refunded. Timing runs on asyncio tasks on the server's loop.

A little over 300 lines on purpose: one generation's whole life (charge, states, render,
callbacks, refund) reads best as one class.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dreamnodes.sandbox import catalog, rendering
from dreamnodes.sandbox.callbacks import CallbackSender
from dreamnodes.sandbox.config import SandboxConfig
from dreamnodes.sandbox.errors import ApiError
from dreamnodes.sandbox.limits import Family, Limits
from dreamnodes.sandbox.store import Store

Record = dict[str, Any]
Listener = Callable[[Record], None]

ASSET_PREFIX = "/sandbox/assets/"
FRAMES_UNREADABLE = "Failed to read user input frames"
BLACKLISTED = "Contains blacklisted words"
JOB_FAILED = "Job failed"
_TYPES = {"mp4": "video/mp4", "jpg": "image/jpeg", "png": "image/png"}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Engine:
    def __init__(self, cfg: SandboxConfig, store: Store, limits: Limits) -> None:
        self.cfg = cfg
        self.store = store
        self.limits = limits
        self.callbacks = CallbackSender()
        self.base_url = ""
        self.listeners: list[Listener] = []  # told of every state change (Pixazo webhooks)
        self._assets: dict[str, bytes] = {}
        self._json: dict[str, bytes] = {}  # cached Generation JSON per id: GETs stay cheap
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._slots: asyncio.Semaphore | None = None
        if store.credits is None:
            store.save_credits(cfg.credits_cents)

    # ---- reading ----------------------------------------------------------------------
    def generation_json(self, gen_id: str) -> bytes | None:
        cached = self._json.get(gen_id)
        if cached is None:
            record = self.store.get(gen_id)
            if record is None or record["kind"] != "luma":
                return None
            cached = self._json[gen_id] = json.dumps(record["gen"]).encode()
        return cached

    @property
    def credits(self) -> float:
        return self.store.credits or 0.0

    # ---- creating ---------------------------------------------------------------------
    def create(
        self,
        request: dict[str, Any],
        *,
        family: Family,
        model: str | None,
        price: float,
        kind: str = "luma",
        limited: bool = True,
        extra: dict[str, Any] | None = None,
        source_id: str | None = None,
    ) -> Record:
        """Check limits and credits, store a queued generation and start its lifecycle."""
        if limited:
            self.limits.check(family)
        if kind == "luma" and price > self.credits:
            raise ApiError(402, "Insufficient credits")  # [unconfirmed] status and text
        gen_id = str(uuid.uuid4())
        gen: dict[str, Any] = {
            "id": gen_id,
            "generation_type": family,
            "state": "queued",
            "failure_reason": None,
            "created_at": now_iso(),
            "assets": None,
            "model": model,
            "request": request,
        }
        if source_id is not None:
            gen["source_generation_id"] = source_id
        record: Record = {"kind": kind, "id": gen_id, "family": family, "price": price, "gen": gen}
        record.update(extra or {})
        if limited:
            self.limits.admit(family, gen_id, self._expected_seconds(family))
            record["limited"] = True
        if kind == "luma":
            self.store.save_credits(round(self.credits - price, 4))
        self.store.put(record)
        self._start(record)
        return record

    def _expected_seconds(self, family: str) -> float:
        phase = self.cfg.dreaming_seconds if family == "video" else self.cfg.image_seconds
        return self.cfg.scaled(self.cfg.queued_seconds + phase)

    def _start(self, record: Record) -> None:
        rid = record["id"]
        self._done[rid] = asyncio.Event()
        self._tasks[rid] = asyncio.get_running_loop().create_task(self._lifecycle(rid))

    def resume(self) -> None:
        """After a restart with --db: carry unfinished generations on."""
        for kind in ("luma", "pixazo"):
            for record in self.store.all(kind):
                if record["gen"]["state"] in ("queued", "dreaming"):
                    self._start(record)

    def delete(self, gen_id: str) -> bool:
        record = self.store.get(gen_id)
        if record is None or record["kind"] != "luma":
            return False
        task = self._tasks.pop(gen_id, None)
        if task is not None:
            task.cancel()
        self._finish_limits(record)
        self.store.delete(gen_id)
        self._json.pop(gen_id, None)
        self._assets.pop(gen_id, None)
        return True

    async def wait(self, gen_id: str, timeout: float) -> None:
        event = self._done.get(gen_id)
        if event is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)

    # ---- lifecycle --------------------------------------------------------------------
    def _update(self, record: Record, **changes: Any) -> None:
        record["gen"].update(changes)
        self.store.put(record)
        self._json.pop(record["id"], None)
        url = record["gen"]["request"].get("callback_url")
        if url and record["kind"] == "luma":
            self.callbacks.send(url, record["gen"])
        for listener in self.listeners:
            listener(record)

    def _finish_limits(self, record: Record) -> None:
        if record.get("limited"):
            self.limits.finished(record["family"], record["id"])

    async def _lifecycle(self, rid: str) -> None:
        record = self.store.get(rid)
        assert record is not None
        try:
            if record["gen"]["state"] == "queued":
                await asyncio.sleep(self.cfg.scaled(self.cfg.queued_seconds))
            reason = self._moderate(record["gen"]["request"])
            inputs: dict[str, Any] = {}
            if reason is None:
                try:
                    inputs = await self._inputs(record)
                except rendering.InputError:
                    reason = FRAMES_UNREADABLE
            if reason is not None:
                self._fail(record, reason)
                return
            if record["gen"]["state"] != "dreaming":
                self._update(record, state="dreaming")
            phase = (
                self.cfg.dreaming_seconds if record["family"] == "video" else self.cfg.image_seconds
            )
            rendered = asyncio.ensure_future(self._render(record, inputs))
            await asyncio.sleep(self.cfg.scaled(phase))
            try:
                data = await rendered
            except Exception:
                self._fail(record, JOB_FAILED)
                return
            self._assets[rid] = data
            self._update(record, state="completed", assets=self._asset_urls(record))
        finally:
            self._finish_limits(record)
            self._tasks.pop(rid, None)
            event = self._done.get(rid)
            if event is not None:
                event.set()

    def _fail(self, record: Record, reason: str) -> None:
        if record["kind"] == "luma":
            self.store.save_credits(round(self.credits + record["price"], 4))
        self._update(record, state="failed", failure_reason=reason)

    @staticmethod
    def _moderate(request: dict[str, Any]) -> str | None:
        text = " ".join(str(request.get(k) or "") for k in ("prompt", "negative_prompt")).lower()
        return BLACKLISTED if any(word in text for word in catalog.BLACKLIST) else None

    def _ext(self, record: Record) -> str:
        if record["family"] == "video":
            return "mp4"
        return str(record["gen"]["request"].get("format") or "jpg")

    def _asset_urls(self, record: Record) -> dict[str, Any]:
        url = f"{self.base_url}{ASSET_PREFIX}{record['id']}.{self._ext(record)}"
        if record["family"] == "video":
            return {"video": url, "image": None, "progress_video": None}
        return {"video": None, "image": url, "progress_video": None}

    # ---- inputs and rendering ---------------------------------------------------------
    async def _fetch(self, url: str) -> bytes:
        return await rendering.fetch(url, self.cfg.fetch_timeout, self._local_asset)

    async def _local_asset(self, url: str) -> bytes | None:
        prefix = self.base_url + ASSET_PREFIX
        if not self.base_url or not url.startswith(prefix):
            return None
        found = await self.asset(url[len(prefix) :])
        if found is None:
            raise rendering.InputError("no such asset")
        return found[0]

    async def _video_of(self, gen_id: str) -> bytes:
        found = await self.asset(f"{gen_id}.mp4")
        if found is None:
            raise rendering.InputError(f"generation {gen_id} has no video")
        return found[0]

    async def _inputs(self, record: Record) -> dict[str, Any]:
        """Download what the request points at: keyframes, media, references."""
        request = record["gen"]["request"]
        kind = request.get("generation_type")
        out: dict[str, Any] = {}
        if kind == "video":
            frames = request.get("keyframes") or {}
            f0, f1 = frames.get("frame0"), frames.get("frame1")
            if f0 and f0["type"] == "image":
                out["start_image"] = await self._fetch(f0["url"])
            elif f0:
                out["source_video"] = await self._video_of(f0["id"])
            if f1 and f1["type"] == "image":
                out["end_image"] = await self._fetch(f1["url"])
            elif f1 and f0 is None:
                out["source_video"] = await self._video_of(f1["id"])
                out["reverse"] = True
            elif f1:
                out["end_image"] = await rendering.first_frame_jpeg(await self._video_of(f1["id"]))
        elif kind in ("upscale_video", "add_audio"):
            out["source_video"] = await self._video_of(record["gen"]["source_generation_id"])
            if kind == "add_audio":
                out["audio"] = request.get("prompt") or "ambient sound"
        elif kind in ("modify_video", "reframe_video"):
            out["source_video"] = await self._fetch(request["media"]["url"])
            if request.get("first_frame"):
                out["start_image"] = await self._fetch(request["first_frame"]["url"])
        elif kind == "reframe_image":
            out["refs"] = (await self._fetch(request["media"]["url"]),)
        elif kind == "image":
            urls = [r["url"] for r in request.get("image_ref") or []]
            urls += [r["url"] for r in request.get("style_ref") or []]
            urls += (request.get("character_ref") or {}).get("identity0", {}).get("images", [])
            if request.get("modify_image_ref"):
                urls.append(request["modify_image_ref"]["url"])
            out["refs"] = tuple([await self._fetch(u) for u in urls])
        return out

    def _video_shape(self, record: Record) -> dict[str, Any]:
        request = record["gen"]["request"]
        source_id = record["gen"].get("source_generation_id")
        source = self.store.get(source_id) if source_id else None
        base = source["gen"]["request"] if source else request
        duration = base.get("duration") or catalog.DEFAULT_DURATION
        return {
            "prompt": request.get("prompt") or base.get("prompt") or "",
            "duration_s": float(str(duration).rstrip("s") or 5),
            "aspect_ratio": request.get("aspect_ratio") or base.get("aspect_ratio") or "16:9",
            "resolution": request.get("resolution")
            or base.get("resolution")
            or catalog.DEFAULT_RESOLUTION,
            "loop": bool(request.get("loop")),
            "full_size": self.cfg.full_size,
        }

    def _slots_now(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = rendering.render_slots()
        return self._slots

    async def _render(self, record: Record, inputs: dict[str, Any]) -> bytes:
        if record["family"] == "video":
            spec = self._video_shape(record) | inputs
            return await rendering.render_video(self._slots_now(), self.cfg.render, **spec)
        request = record["gen"]["request"]
        return await rendering.render_image(
            self._slots_now(),
            self.cfg.render,
            request.get("prompt") or "",
            request.get("aspect_ratio") or "16:9",
            request.get("format") or "jpg",
            inputs.get("refs", ()),
            self.cfg.full_size,
        )

    # ---- assets -----------------------------------------------------------------------
    async def asset(self, name: str) -> tuple[bytes, str] | None:
        """Bytes and content type of `<id>.<ext>`; re-rendered on demand (e.g. after --db)."""
        gen_id, _, ext = name.rpartition(".")
        record = self.store.get(gen_id)
        if record is None or record["gen"]["state"] != "completed" or ext != self._ext(record):
            return None
        data = self._assets.get(gen_id)
        if data is None:
            try:
                data = await self._render(record, await self._inputs(record))
            except rendering.InputError:
                return None
            self._assets[gen_id] = data
        return data, _TYPES[ext]

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await self.callbacks.close()
