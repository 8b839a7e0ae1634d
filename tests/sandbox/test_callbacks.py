"""Callbacks: the Generation POSTed on dreaming, completed, failed; non-200 retried 3 times."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fakeserver import FakeServer, Request, Response
from lumaai import LumaAI


class Receiver:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.by_state: dict[str, list[int]] = {}

    async def handle(self, req: Request) -> Response:
        body = json.loads(req.body)
        self.bodies.append(body)
        # Each state fails its first `failures` deliveries (states may interleave).
        seen = sum(1 for b in self.bodies if b["state"] == body["state"])
        status = 500 if seen <= self.failures else 200
        self.statuses.append(status)
        self.by_state.setdefault(body["state"], []).append(status)
        return Response(status_code=status)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver(failures=0)
    with FakeServer(rec.handle) as server:
        yield rec, server.base_url + "/hook?token=abc"


def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_callback_on_dreaming_and_completed(
    client: LumaAI, receiver: tuple[Receiver, str], done: Any
) -> None:
    rec, url = receiver
    created = client.generations.create(prompt="a calm sea", model="ray-2", callback_url=url)
    done(client, created.id)
    _wait_for(lambda: len(rec.bodies) >= 2)
    assert [b["state"] for b in rec.bodies] == ["dreaming", "completed"]
    assert rec.bodies[-1]["id"] == created.id
    assert rec.bodies[-1]["assets"]["video"].endswith(".mp4")


def test_callback_on_failure(client: LumaAI, receiver: tuple[Receiver, str], done: Any) -> None:
    rec, url = receiver
    created = client.generations.create(prompt="blacklisted", model="ray-2", callback_url=url)
    done(client, created.id)
    _wait_for(lambda: len(rec.bodies) >= 1)
    assert rec.bodies[0]["state"] == "failed"
    assert rec.bodies[0]["failure_reason"] == "Contains blacklisted words"


def test_non_200_is_retried_until_200(client: LumaAI, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    rec.failures = 2
    client.generations.create(prompt="a calm sea", model="ray-2", callback_url=url)
    _wait_for(lambda: rec.by_state.get("completed", [])[-1:] == [200])
    assert rec.by_state == {"dreaming": [500, 500, 200], "completed": [500, 500, 200]}


def test_at_most_three_retries(client: LumaAI, receiver: tuple[Receiver, str], done: Any) -> None:
    rec, url = receiver
    rec.failures = 100
    created = client.generations.image.create(prompt="a cat", model="photon-1", callback_url=url)
    done(client, created.id)
    time.sleep(0.6)
    assert rec.by_state == {"dreaming": [500] * 4, "completed": [500] * 4}
