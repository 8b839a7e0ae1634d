"""A local stand-in for the Luma Dream Machine API, the Luma Agents API and the Pixazo gateway
(`dreamnodes[sandbox]`).

with Sandbox(SandboxConfig(time_scale=10)) as sb:
    client = LumaAI(auth_token="any", base_url=sb.luma_url)
    agents = Luma(auth_token="any", base_url=sb.luma_agents_url)  # luma_agents
"""

from dreamnodes.sandbox.app import Sandbox
from dreamnodes.sandbox.config import SandboxConfig

__all__ = ["Sandbox", "SandboxConfig"]
