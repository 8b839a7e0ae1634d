"""The Files API: create (JSON: a presigned PUT; multipart: inline bytes), PUT the bytes to the
sandbox's own presigned URL, complete, ingest (asynchronous: `pending` -> `ready` | `failed`),
get, list (keyset paging, newest first) and soft delete.

Status codes are not documented; the sandbox answers 201 for a create, 200 for complete, get and
list, 204 for a delete (documented). Files live in memory only.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from dreamnodes.sandbox.agents import catalog, media_check
from dreamnodes.sandbox.agents.multipart import parse_form
from dreamnodes.sandbox.agents.refs import bad
from dreamnodes.sandbox.agents.signing import Signer, s3_error
from dreamnodes.sandbox.errors import ApiError

Record = dict[str, Any]
INLINE_MAX = 10 * 1024 * 1024  # the inline cap is not documented; the sandbox's choice
UPLOAD_TTL_S = 3600.0  # the PUT URL's lifetime is not documented; the sandbox's choice
NOT_FOUND = "File not found"


def iso(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any, path: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise bad(path, f"'{value}' is not an ISO 8601 date-time") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise bad(path, "must be in the future")
    return moment


class Files:
    def __init__(self, signer: Signer, ingest_seconds: float) -> None:
        self.signer = signer
        self.ingest_seconds = ingest_seconds  # wall-clock
        self.base_url = ""
        self._records: dict[str, Record] = {}
        self._seq = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- reading ----------------------------------------------------------------------
    def record(self, owner: str, file_id: str) -> Record | None:
        record = self._records.get(file_id)
        if record is None or record["owner"] != owner:
            return None
        expires = record["expires"]
        live = record["file"]["state"] != "deleted"
        if expires is not None and live and datetime.now(UTC) >= expires:
            record["file"].update(state="deleted", deleted_at=iso(expires))
            record["data"] = None
        return record

    def get(self, owner: str, file_id: str) -> dict[str, Any]:
        record = self.record(owner, file_id)
        if record is None:
            raise ApiError(404, NOT_FOUND)
        return dict(record["file"])

    def data(self, owner: str, file_id: str) -> bytes | None:
        record = self.record(owner, file_id)
        return None if record is None else record["data"]

    def page(self, owner: str, query: dict[str, str]) -> dict[str, Any]:
        try:
            limit = int(query.get("limit", "25"))
        except ValueError:
            raise bad("limit", "must be an integer") from None
        if not 1 <= limit <= 100:
            raise bad("limit", "must be between 1 and 100")
        purpose, state = query.get("purpose"), query.get("state")
        if purpose is not None and purpose not in catalog.PURPOSES:
            raise bad("purpose", f"'{purpose}' is not one of input, reference")
        if state is not None and state not in catalog.FILE_STATES:
            raise bad("state", f"'{state}' is not one of {', '.join(catalog.FILE_STATES)}")
        below = self._cursor(query.get("cursor"))
        rows = []
        for record in sorted(self._records.values(), key=lambda r: -r["seq"]):
            mine = self.record(owner, record["file"]["id"])
            if mine is None or record["seq"] >= below:
                continue
            file = record["file"]
            if (purpose and file["purpose"] != purpose) or (state and file["state"] != state):
                continue
            if state is None and file["state"] == "deleted":
                continue  # deleted files show only when asked for
            rows.append(record)
        page, more = rows[:limit], len(rows) > limit
        cursor = None
        if more:
            cursor = base64.urlsafe_b64encode(f"seq:{page[-1]['seq']}".encode()).decode()
        return {"data": [dict(r["file"]) for r in page], "has_more": more, "next_cursor": cursor}

    @staticmethod
    def _cursor(cursor: str | None) -> int:
        if not cursor:
            return 1 << 62
        try:
            text = base64.urlsafe_b64decode(cursor.encode()).decode()
            if not text.startswith("seq:"):
                raise ValueError(text)
            return int(text[4:])
        except ValueError:
            raise bad("cursor", "invalid cursor") from None

    # ---- creating ---------------------------------------------------------------------
    def create(self, owner: str, body: Any, content_type: str, raw: bytes) -> dict[str, Any]:
        inline: bytes | None = None
        if content_type.startswith("multipart/form-data"):
            fields, uploaded = parse_form(raw, content_type)
            if uploaded is None:
                raise bad("file", "a multipart create needs a file part")
            inline, part_type = uploaded
            fields.setdefault("mime_type", part_type)
            fields.setdefault("size_bytes", str(len(inline)))
            body = fields
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object")
        mime = body.get("mime_type")
        if not isinstance(mime, str) or not mime:
            raise bad("mime_type", "is required")
        if mime not in (*catalog.IMAGE_TYPES_IN, *catalog.VIDEO_TYPES_IN):
            raise bad("mime_type", f"'{mime}' is not a supported image or video type")
        size = body.get("size_bytes")
        if isinstance(size, str) and size.isdigit():
            size = int(size)
        if not isinstance(size, int) or isinstance(size, bool):
            raise bad("size_bytes", "is required and must be an integer")
        if not 1 <= size <= catalog.MAX_FILE_BYTES:
            raise bad("size_bytes", f"must be between 1 and {catalog.MAX_FILE_BYTES}")
        purpose = body.get("purpose") or "input"
        if purpose not in catalog.PURPOSES:
            raise bad("purpose", f"'{purpose}' is not one of input, reference")
        for key in ("filename", "user_id"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise bad(key, "must be a string")
        if len(body.get("user_id") or "") > catalog.MAX_USER_ID:
            raise bad("user_id", "must be at most 256 characters")
        expires = _parse_time(body.get("expires_at"), "expires_at")
        if inline is not None:
            if len(inline) > INLINE_MAX:
                raise ApiError(413, "File too large for an inline upload; use the presigned flow")
            if len(inline) != size:
                raise bad("size_bytes", f"is {size} but the file part has {len(inline)} bytes")
        return self._store(owner, body, mime, size, purpose, expires, inline)

    def _store(
        self,
        owner: str,
        body: dict[str, Any],
        mime: str,
        size: int,
        purpose: str,
        expires: datetime | None,
        inline: bytes | None,
    ) -> dict[str, Any]:
        file_id = str(uuid.uuid4())
        file = {
            "id": file_id,
            "created_at": iso(),
            "mime_type": mime,
            "purpose": purpose,
            "size_bytes": size,
            "state": "pending",
            "deleted_at": None,
            "expires_at": iso(expires) if expires else None,
            "failure_reason": None,
            "filename": body.get("filename"),
            "user_id": body.get("user_id"),
        }
        self._seq += 1
        record: Record = {"owner": owner, "file": file, "data": inline, "seq": self._seq}
        record["expires"] = expires
        self._records[file_id] = record
        if inline is not None:
            self._ingest(record)
            return {"id": file_id, "state": "pending", "file": dict(file), "upload": None}
        url, until = self.signer.sign(self.base_url, catalog.UPLOAD_PREFIX + file_id, UPLOAD_TTL_S)
        upload = {"url": url, "method": "PUT", "headers": {"Content-Type": mime}}
        upload["expires_at"] = iso(until)
        record["upload"] = upload
        return {"id": file_id, "state": "pending", "file": dict(file), "upload": upload}

    def put(self, file_id: str, query: dict[str, str], content_type: str, data: bytes) -> Response:
        """The presigned PUT: S3's answers (200 with an ETag, or an XML error)."""
        refusal = self.signer.refusal(catalog.UPLOAD_PREFIX + file_id, query)
        if refusal is not None:
            return refusal
        record = self._records.get(file_id)
        if record is None or record["file"]["state"] != "pending" or record.get("completed"):
            return s3_error(403, "AccessDenied", "Access Denied")
        if content_type.split(";")[0].strip() != record["file"]["mime_type"]:
            return s3_error(
                403, "SignatureDoesNotMatch", "The Content-Type does not match the signed upload."
            )
        expected = record["file"]["size_bytes"]
        if len(data) < expected:
            return s3_error(400, "IncompleteBody", f"Expected {expected} bytes, got {len(data)}.")
        if len(data) > expected:
            return s3_error(400, "EntityTooLarge", f"Expected {expected} bytes, got {len(data)}.")
        record["data"] = data
        etag = '"' + uuid.uuid5(uuid.NAMESPACE_OID, file_id).hex + '"'
        return Response(status_code=200, headers={"etag": etag})

    def complete(self, owner: str, file_id: str) -> dict[str, Any]:
        record = self.record(owner, file_id)
        if record is None:
            raise ApiError(404, NOT_FOUND)
        if record["file"]["state"] == "deleted":
            raise ApiError(400, f"File {file_id} has been deleted")
        if record["data"] is None:
            raise ApiError(400, "No bytes were uploaded for this file; PUT them to the upload URL")
        if not record.get("completed"):
            self._ingest(record)
        return dict(record["file"])

    def delete(self, owner: str, file_id: str) -> None:
        record = self.record(owner, file_id)
        if record is None:
            raise ApiError(404, NOT_FOUND)
        if record["file"]["state"] != "deleted":
            record["file"].update(state="deleted", deleted_at=iso())
            record["data"] = None

    # ---- ingest -----------------------------------------------------------------------
    def _ingest(self, record: Record) -> None:
        record["completed"] = True
        task = asyncio.get_running_loop().create_task(self._run_ingest(record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_ingest(self, record: Record) -> None:
        await asyncio.sleep(self.ingest_seconds)
        data, file = record["data"], record["file"]
        if file["state"] != "pending" or data is None:
            return
        problem = await asyncio.to_thread(media_check.problem, data, file["mime_type"])
        if problem is None:
            file["state"] = "ready"
        else:
            file.update(state="failed", failure_reason=problem)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
