"""Nodes that run on this machine: Download Asset, and the Generation Updated trigger."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dreamnodes import results
from dreamnodes.errors import DreamError

if TYPE_CHECKING:
    from dreamnodes.prepare import Prepared
    from dreamnodes.run import Runner


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
            return results.pixazo_status(payload)
        if payload.get("state") not in ("queued", "dreaming", "completed", "failed"):
            raise DreamError("invalid_input", "payload: no valid state")
        return results.generation(payload)
    except DreamError as error:
        raise DreamError(
            "invalid_input",
            "payload: not a Luma generation or a Pixazo status"
            f" ({error.message.removeprefix('payload: ')})",
            field="payload",
        ) from None


async def run_local(
    runner: Runner, prepared: Prepared, *, download_dir: str | None = None
) -> dict[str, Any]:
    handler = prepared.node.spec["handler"]
    params = prepared.params
    if handler == "generation_updated":
        return generation_from_callback(params["payload"])
    from dreamnodes.download import download

    saved = await download(
        runner.http,
        params["url"],
        params.get("directory") or download_dir or ".",
        filename=params.get("filename"),
        max_bytes=int(params.get("max_mb", 2048) * 1024 * 1024),
        # public addresses only, plus the run's own provider (the sandbox on 127.0.0.1)
        allow_private_urls=bool(getattr(runner, "allow_private_urls", False)),
        provider_url=runner.base_url,
    )
    return {
        "path": saved.path,
        "bytes": saved.bytes,
        "content_type": saved.content_type,
        "sha256": saved.sha256,
    }
