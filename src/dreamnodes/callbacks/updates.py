"""A callback body (Luma's Generation or Pixazo's status) read into the normalised output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamnodes.api import answers
from dreamnodes.errors import DreamError


def generation_from_callback(payload: Any) -> dict[str, Any]:
    """A callback body (Luma's Generation or Pixazo's status) as the normalised Generation."""
    if isinstance(payload, str | bytes):
        import json

        try:
            payload = json.loads(payload)
        except ValueError as problem:
            raise DreamError(
                "invalid_input", f"payload: not JSON ({problem})", field="payload"
            ) from None
    if not isinstance(payload, Mapping):
        raise DreamError(
            "invalid_input", "payload: expected a JSON object (a generation)", field="payload"
        )
    try:
        if "request_id" in payload and "status" in payload:
            return answers.pixazo_status(payload)
        if payload.get("state") not in ("queued", "dreaming", "completed", "failed"):
            raise DreamError("invalid_input", "payload: no valid state")
        return answers.generation(payload)
    except DreamError as error:
        raise DreamError(
            "invalid_input",
            "payload: not a Luma generation or a Pixazo status"
            f" ({error.message.removeprefix('payload: ')})",
            field="payload",
        ) from None
