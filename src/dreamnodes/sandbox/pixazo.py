"""The Pixazo gateway's Ray 2 Flash image-to-video routes, at the root of the server.

Auth answers use Azure API Management's wording (the gateway runs on it); validation errors
use Pixazo's `{"error", "message"}` shape [unconfirmed texts]. In the sandbox `X-Webhook-URL`
also accepts plain http:// on a loopback host (127.0.0.1, localhost, ::1) so that tests can
receive webhooks; any other http:// URL is refused as Pixazo does. Pixazo jobs do not draw on
the Luma credit balance and are not subject to the Luma account limits.
"""

from __future__ import annotations

import hmac
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from dreamnodes.sandbox import catalog
from dreamnodes.sandbox.engine import JOB_FAILED, Engine, Record, now_iso
from dreamnodes.sandbox.http import json_answer

MODEL_ID = "luma-dream-machine-ray-2-flash-image-to-video"
CREATE_PATH = f"/{MODEL_ID}/v1/{MODEL_ID}-request"
STATUS_PREFIX = "/v2/requests/status/"
_RATIOS = ("16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
_RESOLUTIONS = ("540p", "720p", "1080p")
_STATUS = {"queued": "QUEUED", "dreaming": "PROCESSING", "completed": "COMPLETED"}
PRICE_PER_SECOND_USD = 0.04


def matches(path: str) -> bool:
    return path == CREATE_PATH or path.startswith(STATUS_PREFIX)


def _error(status: int, error: str, message: str) -> Response:
    return json_answer(status, {"error": error, "message": message})


class PixazoRoutes:
    def __init__(self, engine: Engine, api_key: str | None) -> None:
        self.engine = engine
        self._key = api_key
        engine.listeners.append(self._on_change)

    def _denied(self, req: Request) -> Response | None:
        key = req.headers.get("ocp-apim-subscription-key", "")
        if not key:
            message = (
                "Access denied due to missing subscription key. Make sure to include"
                " subscription key when making requests to an API."
            )
        elif self._key is not None and not hmac.compare_digest(key.encode(), self._key.encode()):
            message = (
                "Access denied due to invalid subscription key. Make sure to provide a valid"
                " key for an active subscription."
            )
        else:
            return None
        return json_answer(401, {"statusCode": 401, "message": message})

    async def handle(self, req: Request, body: bytes) -> Response:
        """`body`: the request body, already read."""
        denied = self._denied(req)
        if denied is not None:
            return denied
        path: str = req.scope["path"]
        if path == CREATE_PATH:
            if req.method != "POST":
                return _error(405, "Method Not Allowed", "Use POST")
            return self._create(req, body)
        if req.method != "GET":
            return _error(405, "Method Not Allowed", "Use GET")
        record = self.engine.store.get(path[len(STATUS_PREFIX) :])
        if record is None or record["kind"] != "pixazo":
            return _error(404, "Not Found", "Request not found")
        return json_answer(200, self.status(record))

    def _create(self, req: Request, raw: bytes) -> Response:
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return _error(400, "Bad Request", "Request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "Bad Request", "Request body must be a JSON object")
        problem = _check(body)
        if problem:
            return _error(400, "Validation Error", problem)
        webhook = req.headers.get("x-webhook-url")
        mode = req.headers.get("x-webhook-mode", "terminal").lower()
        if webhook is not None and not _webhook_allowed(webhook):
            return _error(400, "Invalid Webhook URL", "X-Webhook-URL must be an https:// URL")
        if mode not in ("terminal", "sync"):
            return _error(400, "Invalid Webhook Mode", "X-Webhook-Mode must be terminal or sync")
        frames: dict[str, Any] = {"frame0": {"type": "image", "url": body["image_url"]}}
        frames["frame1"] = (
            {"type": "image", "url": body["end_image_url"]} if body.get("end_image_url") else None
        )
        duration = body.get("duration") or "5s"
        request = {
            "generation_type": "video",
            "model": "ray-flash-2",
            "prompt": body["prompt"],
            "aspect_ratio": body.get("aspect_ratio") or "16:9",
            "loop": bool(body.get("loop", False)),
            "resolution": body.get("resolution") or "540p",
            "duration": duration,
            "keyframes": frames,
            "concepts": None,
            "callback_url": None,
        }
        request_id = f"{MODEL_ID}_{uuid.uuid4()}"
        price = PRICE_PER_SECOND_USD * 100 * float(duration.rstrip("s"))
        record = self.engine.create(
            request,
            family="video",
            model="ray-flash-2",
            price=price,
            kind="pixazo",
            limited=False,
            extra={
                "id": request_id,
                "pixazo": {"input": body, "webhook": webhook, "mode": mode},
                "updated_at": now_iso(),
            },
        )
        return json_answer(
            202,
            {
                "request_id": record["id"],
                "status": "QUEUED",
                "polling_url": f"{self.engine.base_url}{STATUS_PREFIX}{record['id']}",
            },
        )

    def status(self, record: Record) -> dict[str, Any]:
        gen = record["gen"]
        state = gen["state"]
        terminal = state in ("completed", "failed")
        if state == "failed":
            status = "ERROR" if gen["failure_reason"] == JOB_FAILED else "FAILED"
        else:
            status = _STATUS[state]
        output = None
        if state == "completed":
            output = {"media_url": [gen["assets"]["video"]], "media_type": "video/mp4"}
        return {
            "request_id": record["id"],
            "status": status,
            "model_id": MODEL_ID,
            "error": gen["failure_reason"],
            "output": output,
            "created_at": gen["created_at"],
            "updated_at": record.get("updated_at", gen["created_at"]),
            "completed_at": record.get("updated_at") if terminal else None,
        }

    def _on_change(self, record: Record) -> None:
        if record["kind"] != "pixazo":
            return
        record["updated_at"] = now_iso()
        hook = record["pixazo"]
        terminal = record["gen"]["state"] in ("completed", "failed")
        if hook["webhook"] and (terminal or hook["mode"] == "sync"):
            self.engine.callbacks.send(hook["webhook"], self.status(record))


def _check(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("image_url"), str) or not body["image_url"]:
        return "image_url is required"
    if not body["image_url"].startswith(("http://", "https://")):
        return "image_url must be an http(s) URL"
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt is required"
    end = body.get("end_image_url", "")
    if end and (not isinstance(end, str) or not end.startswith(("http://", "https://"))):
        return "end_image_url must be an http(s) URL or empty"
    checks = (
        ("aspect_ratio", _RATIOS),
        ("resolution", _RESOLUTIONS),
        ("duration", catalog.DURATIONS),
    )
    for key, allowed in checks:
        if body.get(key) is not None and body[key] not in allowed:
            return f"{key} must be one of {', '.join(allowed)}"
    if "loop" in body and not isinstance(body["loop"], bool):
        return "loop must be a boolean"
    return None


def _webhook_allowed(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
