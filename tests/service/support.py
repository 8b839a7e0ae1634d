"""What the service tests share: the secrets they use and a service's config."""

from __future__ import annotations

from pathlib import Path

from dreamnodes.sandbox import Sandbox
from dreamnodes.service import Endpoint, ServiceConfig

TOKEN = "test-token-0123456789abcdef"
SECRET = "signing-secret-0123456789"
PROVIDER_KEY = "sk-provider-key-DO-NOT-LEAK-42"


def config_for(sb: Sandbox, store: Path, **overrides: object) -> ServiceConfig:
    config = ServiceConfig(
        token=TOKEN,
        signing_secret=SECRET,
        store=str(store),
        endpoints={"luma": Endpoint(sb.luma_url, PROVIDER_KEY, sandbox=True)},
        sandbox_id=sb.base_url,
        limits=None,
        time_scale=10,
        notify_first_delay=0.05,
    )
    for name, value in overrides.items():
        setattr(config, name, value)
    return config
