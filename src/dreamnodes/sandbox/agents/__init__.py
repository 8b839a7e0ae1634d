"""The sandbox's third face: the Luma Agents API (Ray 3.2 video, UNI-1 images and layering, the
Files API) under /agents/v1, as the official `luma-agents` SDK expects it.

    with Sandbox() as sb:
        client = Luma(auth_token="any", base_url=sb.luma_agents_url)
"""

from dreamnodes.sandbox.agents.api import AgentsApi
from dreamnodes.sandbox.agents.catalog import OUTPUT_PREFIX, PREFIX, UPLOAD_PREFIX

__all__ = ["OUTPUT_PREFIX", "PREFIX", "UPLOAD_PREFIX", "AgentsApi"]
