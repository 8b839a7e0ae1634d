"""Local files uploaded for the user through the Luma Agents Files API, referred to by file id.

An image or video field of an Agents node may name a local file; the mapping leaves
``{"upload": path, "media": "image"|"video", "field": name}`` in the request and `with_uploads`
puts ``{"file_id": ...}`` in its place before the request is sent: POST /files (its size and
type), PUT the bytes to the presigned URL with exactly the headers given, POST
/files/{id}/complete, then GET /files/{id} until it is `ready`. The same bytes are uploaded once:
a sha256 → file id cache (in this process, and in a small JSON file, `DREAMNODES_UPLOAD_CACHE`,
default ``~/.cache/dreamnodes/uploads.json``, ``off`` to disable) is checked with one GET before
it is trusted, so a deleted or expired file is uploaded again. Hosts holding bytes call
`upload_bytes` and pass ``file:<id>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamnodes.api.agents_answers import agents_file
from dreamnodes.catalog.requests import ApiRequest
from dreamnodes.downloads.mediatypes import sniff
from dreamnodes.errors import DreamError

if TYPE_CHECKING:
    from dreamnodes.execution.runner import Runner
    from dreamnodes.preparation.prepare import Prepared

PROVIDER = "luma_agents"
READY_POLLS = (0.5, 1.0, 2.0, 3.0)  # seconds between looks at a pending file
READY_TIMEOUT = 300.0
MAX_BYTES = 5 * 1024**3  # the API's size_bytes ceiling
_SNIFFED = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "ebml": "video/webm"}
_memory: dict[str, str] = {}  # cache key -> file id, this process


def forget() -> None:
    """Drop this process's memory of uploads (tests replaying cassettes start afresh)."""
    _memory.clear()


async def with_uploads(runner: Runner, prepared: Prepared) -> Prepared:
    """The call with every local file of its request uploaded and named by file id."""
    request = prepared.request
    if request is None or not _has_upload(request.json):
        return prepared
    if runner.provider != PROVIDER:
        raise DreamError(
            "invalid_input",
            f"provider: local files are uploaded through the {PROVIDER} provider only",
            field="provider",
        )
    body = await _replace(runner, request.json)
    return replace(prepared, request=replace(request, json=body))


def _has_upload(value: Any) -> bool:
    if isinstance(value, Mapping):
        return "upload" in value or any(_has_upload(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_upload(v) for v in value)
    return False


async def _replace(runner: Runner, value: Any) -> Any:
    if isinstance(value, Mapping):
        if "upload" in value:
            media = str(value.get("media", "image"))
            found = await upload_path(
                runner, str(value["upload"]), media=media, field=value.get("field")
            )
            return {"file_id": found["id"]}
        return {k: await _replace(runner, v) for k, v in value.items()}
    if isinstance(value, list):
        return [await _replace(runner, v) for v in value]
    return value


async def upload_path(
    runner: Runner,
    path: str,
    *,
    media: str | None = None,
    field: str | None = None,
    purpose: str = "input",
) -> dict[str, Any]:
    """Upload one local file (or reuse the upload of the same bytes); returns the File."""
    name = field or "path"
    where = Path(path).expanduser()
    try:
        data = where.read_bytes()
    except OSError as problem:
        raise DreamError(
            "invalid_input",
            f"{name}: {path!r} is not a URL, a file:<id>, a generation id, nor a readable local"
            f" file ({problem.strerror or problem})",
            field=name,
        ) from None
    mime = media_type(data, where.name)
    if mime is None or (media is not None and not mime.startswith(media + "/")):
        wanted = f"{media} " if media else ""
        raise DreamError(
            "invalid_input",
            f"{name}: {path!r} is not a {wanted}file the API takes"
            " (JPEG, PNG or WebP images; MP4, MOV or WebM videos)",
            field=name,
        )
    return await upload_bytes(runner, data, mime, filename=where.name, purpose=purpose)


def media_type(data: bytes, filename: str = "") -> str | None:
    """The media type the first bytes show (an ISO-BMFF file is MP4, or MOV by its name)."""
    kind = sniff(data[:64])
    if kind == "isobmff":
        return "video/quicktime" if filename.lower().endswith(".mov") else "video/mp4"
    return _SNIFFED.get(kind or "")


async def upload_bytes(
    runner: Runner,
    data: bytes,
    mime_type: str,
    *,
    filename: str | None = None,
    purpose: str = "input",
) -> dict[str, Any]:
    """Upload bytes through the Files API (or reuse the same bytes' ready upload)."""
    if len(data) > MAX_BYTES:
        raise DreamError("invalid_input", "path: files are at most 5 GiB", field="path")
    key = _cache_key(runner, data, purpose)
    known = _memory.get(key) or _disk().get(key)
    if known is not None:
        with contextlib.suppress(DreamError):
            found = await _get(runner, known)
            if found["state"] == "ready":
                _memory[key] = known
                return found
    body: dict[str, Any] = {"mime_type": mime_type, "size_bytes": len(data), "purpose": purpose}
    if filename:
        body["filename"] = filename[:255]
    created = (await runner.client.send(ApiRequest("POST", "/files", json=body))).json
    if not isinstance(created, Mapping) or not isinstance(created.get("id"), str):
        raise DreamError("provider_error", "the Files API answered a create without an id")
    file_id = str(created["id"])
    upload = created.get("upload")
    if isinstance(upload, Mapping):
        await _put(runner, upload, data)
        await runner.client.send(ApiRequest("POST", f"/files/{file_id}/complete"))
    found = await _until_ready(runner, file_id)
    _memory[key] = file_id
    _remember(key, file_id)
    return found


async def _put(runner: Runner, upload: Mapping[str, Any], data: bytes) -> None:
    headers = upload.get("headers") if isinstance(upload.get("headers"), Mapping) else {}
    method = str(upload.get("method") or "PUT")
    try:
        answer = await runner.http.request(
            method, str(upload["url"]), content=data, headers=dict(headers or {}), timeout=300.0
        )
    except Exception as problem:  # httpx's transport errors, a bad URL
        raise DreamError(
            "network_error",
            f"uploading to the presigned URL failed ({type(problem).__name__})",
            retryable=True,
        ) from None
    if not 200 <= answer.status_code < 300:
        raise DreamError(
            "provider_error",
            f"uploading to the presigned URL failed: HTTP {answer.status_code}",
            status=answer.status_code,
            retryable=answer.status_code >= 500,
        )


async def _get(runner: Runner, file_id: str) -> dict[str, Any]:
    answer = await runner.client.send(ApiRequest("GET", f"/files/{file_id}"))
    return agents_file(answer.json)


async def _until_ready(runner: Runner, file_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT
    looks = 0
    while True:
        found = await _get(runner, file_id)
        if found["state"] == "ready":
            return found
        if found["state"] in ("failed", "deleted"):
            reason = found.get("failure_reason") or found["state"]
            raise DreamError(
                "invalid_input", f"path: the uploaded file {file_id} {reason}", field="path"
            )
        if time.monotonic() > deadline:
            raise DreamError("timeout", f"the uploaded file {file_id} is still {found['state']}")
        await runner.sleep(READY_POLLS[min(looks, len(READY_POLLS) - 1)] / runner.poll_scale)
        looks += 1


# -- the cache ------------------------------------------------------------------------------------
def _cache_key(runner: Runner, data: bytes, purpose: str) -> str:
    account = runner.account
    where = runner.base_url.rstrip("/")
    return f"{account} {where} {purpose} {hashlib.sha256(data).hexdigest()}"


def cache_file() -> Path | None:
    setting = os.environ.get("DREAMNODES_UPLOAD_CACHE")
    if setting is not None:
        return None if setting.strip().lower() in ("", "off", "0", "none") else Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dreamnodes" / "uploads.json"


def _disk() -> dict[str, str]:
    path = cache_file()
    if path is None:
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


def _remember(key: str, file_id: str) -> None:
    path = cache_file()
    if path is None:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        entries = {**_disk(), key: file_id}
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".uploads-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(dict(list(entries.items())[-1000:]), out)
        os.replace(temp, path)
