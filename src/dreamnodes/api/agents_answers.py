"""Luma Agents API answers on the shapes every node speaks: a Generation, a File, a file list.

A Generation's `processing` is routed as `dreaming` (the raw state stays in `provider_state`);
its outputs become `assets` (the first video, the first image), every output stays in `outputs`
and layering's in `layers`; a failure keeps `failure_code` and says whether a retry can help.
The API echoes no request: the request sent is kept instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamnodes.catalog.requests import ApiRequest, ApiResponse
from dreamnodes.errors import DreamError

Output = dict[str, Any]
STATES = {
    "queued": "queued",
    "processing": "dreaming",
    "completed": "completed",
    "failed": "failed",
}
# Whether running it again can help, per failure code [AGENTS_API.md section 5; the last two 3P].
RETRY_HELPS = {
    "content_moderated": False,
    "generation_failed": True,
    "budget_exhausted": False,
    "output_not_found": True,
    "image_too_large": False,
    "unsupported_format": False,
    "corrupt_input": False,
    "invalid_request": False,
    "rate_limited": True,
}
_FILE_KEYS = (
    "id",
    "state",
    "mime_type",
    "size_bytes",
    "filename",
    "purpose",
    "created_at",
    "expires_at",
    "failure_reason",
    "user_id",
)


def _unexpected(what: str, body: Any) -> DreamError:
    return DreamError(
        "provider_error",
        f"the provider answered with {type(body).__name__} where {what} was expected",
        retryable=False,
    )


def agents_generation(raw: Any, sent: Mapping[str, Any] | None = None) -> Output:
    """A Luma Agents Generation, normalised."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        raise _unexpected("a generation", raw)
    state = str(raw.get("state"))
    if state not in STATES:
        raise DreamError("provider_error", f"the Agents API answered an unknown state {state!r}")
    listed = raw.get("output")
    listed = listed if isinstance(listed, list) else []
    outputs = [dict(o) for o in listed if isinstance(o, Mapping)]
    layers = [
        {"url": o.get("url"), **dict(o["layer"])}
        for o in outputs
        if isinstance(o.get("layer"), Mapping)
    ]
    code = raw.get("failure_code")
    out: Output = {
        "id": raw["id"],
        "state": STATES[state],
        "provider_state": state,
        "generation_type": raw.get("type"),
        "model": raw.get("model"),
        "created_at": raw.get("created_at"),
        "failure_reason": raw.get("failure_reason") or (code if state == "failed" else None),
        "failure_code": code,
        "retryable": RETRY_HELPS.get(str(code), False) if state == "failed" else None,
        "assets": {
            "video": _first(outputs, "video"),
            "image": _first(outputs, "image"),
            "progress_video": None,
        },
        "outputs": outputs,
        "request": dict(sent) if sent else None,
        "provider": "luma_agents",
    }
    if layers:
        out["layers"] = sorted(layers, key=lambda layer: int(layer.get("index") or 0))
    return out


def _first(outputs: list[dict[str, Any]], kind: str) -> str | None:
    for item in outputs:
        if item.get("type") == kind and isinstance(item.get("url"), str):
            return str(item["url"])
    return None


def agents_file(raw: Any) -> Output:
    """A File (or a create's `{id, state, file, upload}`), with a ready-made `ref` to use it."""
    if isinstance(raw, Mapping) and isinstance(raw.get("file"), Mapping):
        raw = raw["file"]
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        raise _unexpected("a file", raw)
    out: Output = {key: raw.get(key) for key in _FILE_KEYS}
    out["ref"] = "file:" + raw["id"]
    return out


def _file_list(resp: ApiResponse, req: ApiRequest, params: Mapping[str, Any]) -> Output:
    body = resp.json
    if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
        raise _unexpected("a list of files", body)
    return {
        "files": [agents_file(item) for item in body["data"]],
        "has_more": bool(body.get("has_more", False)),
        "next_cursor": body.get("next_cursor"),
    }


def _generation(resp: ApiResponse, req: ApiRequest, params: Mapping[str, Any]) -> Output:
    sent = req.json if req.method == "POST" and isinstance(req.json, Mapping) else None
    return agents_generation(resp.json, sent)


READERS = {
    "agents_generation": _generation,
    "agents_file": lambda resp, req, params: agents_file(resp.json),
    "agents_file_list": _file_list,
    "agents_file_deleted": lambda resp, req, params: {"id": params.get("file_id"), "deleted": True},
}
