"""Running nodes against the in-process sandbox, and reading its raw answers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from dreamnodes.execution.runner import Runner
from dreamnodes.sandbox import Sandbox


def run_node(sb: Sandbox, node: str, params: dict[str, Any], **options: Any) -> dict[str, Any]:
    """Run a node against the sandbox's Luma API (or Pixazo with provider="pixazo")."""
    provider = options.pop("provider", "luma")
    base_url = sb.pixazo_url if provider == "pixazo" else sb.luma_url

    async def go() -> dict[str, Any]:
        async with Runner(
            api_key="k", provider=provider, base_url=base_url, poll_scale=20
        ) as runner:
            return await runner.run(node, params, **options)

    return asyncio.run(go())


def raw_generation(sb: Sandbox, gen_id: str) -> Any:
    """The sandbox's own answer for a generation, as a client would read it."""
    answer = httpx.get(f"{sb.luma_url}/generations/{gen_id}", headers={"Authorization": "Bearer k"})
    answer.raise_for_status()
    return answer.json()
