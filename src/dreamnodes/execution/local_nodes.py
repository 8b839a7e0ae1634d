"""Nodes that run on this machine: Download Asset, Upload File, the Generation Updated trigger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dreamnodes.callbacks.updates import generation_from_callback
from dreamnodes.errors import DreamError

if TYPE_CHECKING:
    from dreamnodes.execution.runner import Runner
    from dreamnodes.preparation.prepare import Prepared


async def run_local(
    runner: Runner, prepared: Prepared, *, download_dir: str | None = None
) -> dict[str, Any]:
    handler = prepared.node.spec["handler"]
    params = prepared.params
    if handler == "generation_updated":
        return generation_from_callback(params["payload"])
    if handler == "upload_file":
        from dreamnodes.execution.uploads import PROVIDER, upload_path

        if runner.provider != PROVIDER:
            raise DreamError(
                "invalid_input",
                f"provider: upload_file runs on {PROVIDER}; run it with --provider {PROVIDER}",
                field="provider",
            )
        return await upload_path(runner, params["path"], purpose=params.get("purpose", "input"))
    from dreamnodes.downloads.download import download

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
