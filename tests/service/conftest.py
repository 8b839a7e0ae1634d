"""A sandbox (sped up) and `dreamnodes serve`'s app on a real loopback server in front of it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from dreamnodes.sandbox import Sandbox, SandboxConfig
from dreamnodes.service.app import Service, serve_in_thread
from service.support import PROVIDER_KEY, TOKEN, config_for


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(port=0, time_scale=10, api_key=PROVIDER_KEY)) as sb:
        yield sb


@pytest.fixture(scope="module")
def served(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, str]]:
    store = tmp_path_factory.mktemp("serve") / "runs.sqlite3"
    with serve_in_thread(config_for(sandbox, store)) as pair:
        yield pair


@pytest.fixture
def client(served: tuple[Service, str]) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=served[1], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    ) as c:
        yield c
