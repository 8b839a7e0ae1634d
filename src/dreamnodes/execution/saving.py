"""Saving a completed generation's assets for a run: expired URLs refreshed once, and a
failure that names the paid generation (which stays) instead of hiding it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dreamnodes.errors import DreamError

if TYPE_CHECKING:
    from dreamnodes.execution.runner import Runner


async def save_assets(runner: Runner, output: dict[str, Any], folder: str) -> dict[str, str]:
    """The assets of a paid generation: a failure names the generation, which stays."""
    from dreamnodes.downloads.download import download_assets

    async def save() -> dict[str, str]:
        return await download_assets(
            runner.http,
            output,
            folder,
            allow_private_urls=runner.allow_private_urls,
            provider_url=runner.base_url,
        )

    try:
        try:
            files = await save()
        except DreamError as error:
            if error.status != 403:
                raise
            # An expired presigned URL (Luma Agents: one hour): a GET mints fresh ones.
            output["assets"] = (await runner.get(output["id"]))["assets"]
            files = await save()
    except DreamError as error:
        error.generation_id = output["id"]
        error.message = (
            f"generation {output['id']} completed, but its assets were not saved"
            f" ({error.message}); get them later with download_asset or get_generation"
        )
        raise
    return files
