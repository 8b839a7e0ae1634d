"""Provider answers turned into what a node outputs: one Generation shape for every provider."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dreamnodes.api.agents_answers import READERS as AGENTS_READERS
from dreamnodes.catalog.requests import ApiRequest, ApiResponse
from dreamnodes.errors import DreamError

Output = dict[str, Any]
TERMINAL = frozenset({"completed", "failed"})
PIXAZO_STATES = {
    "QUEUED": "queued",
    "PROCESSING": "dreaming",
    "COMPLETED": "completed",
    "FAILED": "failed",
    "ERROR": "failed",
}
# Answers from before Ray named their model only by version.
VERSIONS = {"v1.6": "ray-1-6", "v1.5": "ray-1-6", "v2": "ray-2"}


def _unexpected(what: str, body: Any) -> DreamError:
    return DreamError(
        "provider_error",
        f"the provider answered with {type(body).__name__} where {what} was expected",
        retryable=False,
    )


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def generation(raw: Any, provider: str = "luma") -> Output:
    """A Luma Generation, normalised (tolerates older answers with `version` and no `model`)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        raise _unexpected("a generation", raw)
    request: Mapping[str, Any] | None = _mapping(raw.get("request"))
    assets: Mapping[str, Any] = _mapping(raw.get("assets")) or {}
    return {
        "id": raw["id"],
        "state": raw.get("state"),
        "generation_type": raw.get("generation_type")
        or (request.get("generation_type") if request else None),
        "model": raw.get("model")
        or (request.get("model") if request else None)
        or VERSIONS.get(str(raw.get("version"))),
        "created_at": raw.get("created_at"),
        "failure_reason": raw.get("failure_reason"),
        "assets": {
            "video": assets.get("video"),
            "image": assets.get("image"),
            "progress_video": assets.get("progress_video"),
        },
        "request": dict(request) if request else None,
        "provider": provider,
    }


def pixazo_status(raw: Any, sent: Mapping[str, Any] | None = None) -> Output:
    """Pixazo's queue status (or webhook payload) on the Generation shape."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("request_id"), str):
        raise _unexpected("a Pixazo status", raw)
    status = str(raw.get("status", "")).upper()
    if status not in PIXAZO_STATES:
        raise DreamError("provider_error", f"Pixazo answered an unknown status {status!r}")
    output: Mapping[str, Any] = _mapping(raw.get("output")) or {}
    video = _pixazo_media(output.get("media_url"))
    state = PIXAZO_STATES[status]
    reason = raw.get("error") or (
        ("system error" if status == "ERROR" else "failed") if state == "failed" else None
    )
    return {
        "id": raw["request_id"],
        "state": state,
        "generation_type": "video",
        "model": "ray-flash-2",
        "created_at": raw.get("created_at"),
        "failure_reason": reason,
        "assets": {"video": video, "image": None, "progress_video": None},
        "request": dict(sent) if sent else None,
        "provider": "pixazo",
    }


def _pixazo_media(media: Any) -> str | None:
    """The first media URL: Pixazo sends a list, but a single URL is taken as a list of one."""
    if media is None or media == "":
        return None
    if isinstance(media, str):
        return media
    if isinstance(media, list) and all(isinstance(url, str) for url in media):
        return media[0] if media else None
    raise DreamError(
        "provider_error",
        f"Pixazo answered a media_url that is neither a URL nor a list of URLs ({_show(media)})",
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _generation_list(resp: ApiResponse, req: ApiRequest, params: Mapping[str, Any]) -> Output:
    body = resp.json
    if not isinstance(body, Mapping) or not isinstance(body.get("generations"), list):
        raise _unexpected("a list of generations", body)
    items = [generation(g) for g in body["generations"]]
    return {
        "generations": items,
        "count": body.get("count", len(items)),
        "has_more": bool(body.get("has_more", False)),
        "limit": body.get("limit"),
        "offset": body.get("offset"),
    }


def _credits(resp: ApiResponse, req: ApiRequest, params: Mapping[str, Any]) -> Output:
    body = resp.json
    if not isinstance(body, Mapping) or not isinstance(body.get("credit_balance"), int | float):
        raise _unexpected("a credit balance", body)
    cents = float(body["credit_balance"])
    return {"credit_balance_cents": cents, "credit_balance_usd": round(cents / 100, 2)}


Reader = Callable[[ApiResponse, ApiRequest, Mapping[str, Any]], Output]
READERS: dict[str, Reader] = {
    "generation": lambda resp, req, params: generation(resp.json),
    "pixazo_status": lambda resp, req, params: pixazo_status(resp.json),
    "pixazo_request": lambda resp, req, params: pixazo_status(resp.json, req.json),
    "generation_list": _generation_list,
    "deleted": lambda resp, req, params: {"id": params.get("generation_id"), "deleted": True},
    "credits": _credits,
    **AGENTS_READERS,
}


def read(
    spec: Mapping[str, Any], resp: ApiResponse, req: ApiRequest, params: Mapping[str, Any]
) -> Output:
    """The node's output for a provider answer, per the node file's `response` declaration."""
    kind = spec["type"]
    if kind == "list":
        if not isinstance(resp.json, list):
            raise _unexpected("a list", resp.json)
        return {spec["key"]: resp.json}
    return READERS[kind](resp, req, params)
