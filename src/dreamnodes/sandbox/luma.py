"""The Luma Dream Machine routes under /dream-machine/v1."""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dreamnodes.sandbox import catalog, edit_requests, validation
from dreamnodes.sandbox.engine import Engine
from dreamnodes.sandbox.errors import ApiError
from dreamnodes.sandbox.http import detail, json_answer, json_bytes

PREFIX = "/dream-machine/v1"
_CREATE_PATHS = {
    "/generations",
    "/generations/video",
    "/generations/image",
    "/generations/video/modify",
    "/generations/video/reframe",
    "/generations/image/reframe",
}


def is_create(method: str, sub: str) -> bool:
    return method == "POST" and (sub in _CREATE_PATHS or sub.endswith(("/upscale", "/audio")))


def _body(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ApiError(400, "Invalid JSON body") from exc


class LumaRoutes:
    def __init__(self, engine: Engine, api_key: str | None) -> None:
        self.engine = engine
        self._key = api_key

    def _authorise(self, req: Request) -> None:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        token = token.strip()
        ok = scheme.lower() == "bearer" and bool(token)
        if ok and self._key is not None:
            ok = hmac.compare_digest(token.encode(), self._key.encode())
        if not ok:
            raise ApiError(401, "Invalid API key is provided")

    async def handle(self, req: Request, sub: str, body: bytes) -> Response:
        """`sub`: the path under PREFIX; `body`: the request body, already read."""
        self._authorise(req)
        method = req.method
        if sub == "/ping":
            return self._only(method, "GET") or json_answer(200, {"message": "pong"})
        if sub == "/credits":
            return self._only(method, "GET") or json_answer(
                200, {"credit_balance": self.engine.credits}
            )
        if sub == "/generations/camera_motion/list":
            return self._only(method, "GET") or json_answer(200, list(catalog.CAMERA_MOTIONS))
        if sub == "/generations/concepts/list":
            return self._only(method, "GET") or json_answer(200, list(catalog.CONCEPTS))
        if sub in _CREATE_PATHS:
            if sub == "/generations" and method == "GET":
                return self._list(req)
            return self._only(method, "POST") or await self._create(sub, _body(body))
        parts = sub.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "generations":
            if method == "GET":
                return self._get(parts[1])
            if method == "DELETE":
                if not self.engine.delete(parts[1]):
                    raise ApiError(404, "Generation not found")
                return Response(status_code=204)
            return detail(405, "Method Not Allowed")
        if len(parts) == 3 and parts[0] == "generations" and parts[2] in ("upscale", "audio"):
            return self._only(method, "POST") or self._derive(parts[1], parts[2], _body(body))
        raise ApiError(404, "Not Found")

    @staticmethod
    def _only(method: str, allowed: str) -> Response | None:
        return None if method == allowed else detail(405, "Method Not Allowed")

    def _get(self, gen_id: str) -> Response:
        body = self.engine.generation_json(gen_id)
        if body is None:
            raise ApiError(404, "Generation not found")
        return json_bytes(200, body)

    def _list(self, req: Request) -> Response:
        try:
            limit = int(req.query_params.get("limit", "100"))
            offset = int(req.query_params.get("offset", "0"))
        except ValueError as exc:
            raise ApiError(400, "limit and offset must be integers") from exc
        if not 1 <= limit <= 1000 or offset < 0:
            raise ApiError(400, "limit must be 1 to 1000 and offset at least 0")
        records = self.engine.store.all("luma")
        newest_first = records[::-1]
        page = newest_first[offset : offset + limit]
        return json_answer(
            200,
            {
                "generations": [r["gen"] for r in page],
                "count": len(page),
                "has_more": offset + len(page) < len(records),
                "limit": limit,
                "offset": offset,
            },
        )

    def _lookup(self, gen_id: str) -> dict[str, Any] | None:
        record = self.engine.store.get(gen_id)
        return record["gen"] if record is not None and record["kind"] == "luma" else None

    async def _create(self, sub: str, body: Any) -> Response:
        engine = self.engine
        if sub in ("/generations", "/generations/video"):
            request = validation.video_request(body, self._lookup)
            price = catalog.video_price(
                request["model"], request["resolution"], request["duration"]
            )
            record = engine.create(request, family="video", model=request["model"], price=price)
        elif sub == "/generations/image":
            request = validation.image_request(body)
            price = catalog.image_price(request["model"])
            record = engine.create(request, family="image", model=request["model"], price=price)
            if request["sync"]:
                timeout = float(request["sync_timeout"] or 60.0)
                await engine.wait(record["id"], timeout)
        elif sub == "/generations/image/reframe":
            request = edit_requests.reframe_request(body, video=False)
            price = catalog.image_price(request["model"])
            record = engine.create(request, family="image", model=request["model"], price=price)
        else:
            is_modify = sub.endswith("/modify")
            request = (
                edit_requests.modify_request(body)
                if is_modify
                else edit_requests.reframe_request(body, video=True)
            )
            price = catalog.video_price(request["model"], "720p", "5s")
            record = engine.create(request, family="video", model=request["model"], price=price)
        return json_answer(201, record["gen"])

    def _derive(self, gen_id: str, action: str, body: Any) -> Response:
        source = self._lookup(gen_id)
        if source is None:
            raise ApiError(404, "Generation not found")
        if action == "upscale":
            request = edit_requests.upscale_request(body)
            price = catalog.UPSCALE_PRICE
        else:
            request = edit_requests.audio_request(body)
            price = catalog.AUDIO_PRICE
        if source.get("generation_type") != "video":
            raise ApiError(400, f"{action} is only supported for video generations")
        if source.get("state") != "completed":
            raise ApiError(400, f"Generation {gen_id} is not completed")
        record = self.engine.create(
            request, family="video", model=source.get("model"), price=price, source_id=gen_id
        )
        return json_answer(200, record["gen"])
