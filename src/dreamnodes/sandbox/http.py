"""Small helpers to answer JSON."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


def json_bytes(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status, headers, media_type="application/json")


def json_answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return json_bytes(status, json.dumps(payload).encode(), headers)


def detail(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return json_answer(status, {"detail": text}, headers)
