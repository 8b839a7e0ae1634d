"""Small helpers to answer: JSON, and bytes with Range support."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def json_bytes(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status, headers, media_type="application/json")


def json_answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return json_bytes(status, json.dumps(payload).encode(), headers)


def detail(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return json_answer(status, {"detail": text}, headers)


def bytes_answer(req: Request, data: bytes, content_type: str) -> Response:
    headers = {"content-type": content_type, "accept-ranges": "bytes"}
    match = RANGE.match(req.headers.get("range", ""))
    if match and (match.group(1) or match.group(2)):
        size = len(data)
        if match.group(1):
            start = int(match.group(1))
            end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        else:
            start, end = max(0, size - int(match.group(2))), size - 1
        if start >= size or start > end:
            return Response(status_code=416, headers={"content-range": f"bytes */{size}"})
        headers["content-range"] = f"bytes {start}-{end}/{size}"
        return Response(data[start : end + 1], 206, headers)
    return Response(data, 200, headers)
