"""The callback receiver over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from dreamnodes.callbacks.receiver import CallbackReceiver
from dreamnodes.errors import DreamError

Scenario = Callable[[CallbackReceiver, httpx.AsyncClient], Awaitable[None]]


def luma(gen_id: str, state: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": gen_id,
        "generation_type": "video",
        "state": state,
        "failure_reason": "Job failed" if state == "failed" else None,
        "created_at": "2024-11-27T13:50:56.313494Z",
        "assets": {"video": f"https://cdn.example/{gen_id}.mp4"} if state == "completed" else None,
        "model": "ray-2",
        "request": {"generation_type": "video", "model": "ray-2", "prompt": "A tiger in snow"},
    }
    body.update(extra)
    return body


def pixazo(request_id: str, status: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "status": status,
        "model_id": "luma-ray-2-flash-i2v",
        "error": "boom" if status == "FAILED" else None,
        "output": {"media_url": [f"https://cdn.example/{request_id}.mp4"], "media_type": "video"}
        if status == "COMPLETED"
        else None,
        "created_at": "2025-01-01T00:00:00Z",
    }


def run(scenario: Scenario, **options: Any) -> None:
    async def go() -> None:
        async with CallbackReceiver(**options) as receiver, httpx.AsyncClient() as client:
            await scenario(receiver, client)

    asyncio.run(go())


def test_luma_update_is_stored_and_answered_ok() -> None:
    async def scenario(receiver: CallbackReceiver, client: httpx.AsyncClient) -> None:
        reg = receiver.register()
        resp = await client.post(reg.url, json=luma("g1", "dreaming"))
        assert resp.status_code == 200
        assert resp.json() == {"ok": True}
        latest = reg.latest("g1")
        assert latest is not None
        assert latest["state"] == "dreaming"
        assert latest["provider"] == "luma"
        assert reg.latest("other") is None
        assert receiver.updates() == 1

    run(scenario)


def test_waiter_wakes_as_soon_as_the_terminal_update_arrives() -> None:
    async def scenario(receiver: CallbackReceiver, client: httpx.AsyncClient) -> None:
        reg = receiver.register()
        waiter = asyncio.create_task(reg.wait("g1", timeout=10))
        await client.post(reg.url, json=luma("g1", "dreaming"))
        await asyncio.sleep(0.05)
        assert not waiter.done()  # dreaming is not terminal
        sent = time.perf_counter()
        await client.post(reg.url, json=luma("g1", "completed"))
        result = await waiter
        assert time.perf_counter() - sent < 0.5
        assert result is not None
        assert result["state"] == "completed"
        assert result["assets"]["video"] == "https://cdn.example/g1.mp4"
        # A late waiter gets the terminal state at once.
        again = await reg.wait("g1", timeout=0.01)
        assert again is not None and again["state"] == "completed"

    run(scenario)


def test_wait_times_out_with_none() -> None:
    async def scenario(receiver: CallbackReceiver, client: httpx.AsyncClient) -> None:
        reg = receiver.register()
        await client.post(reg.url, json=luma("g1", "queued"))
        started = time.perf_counter()
        assert await reg.wait("g1", timeout=0.2) is None
        assert 0.15 < time.perf_counter() - started < 2

    run(scenario)


def test_the_same_update_twice_changes_nothing() -> None:
    async def scenario(receiver: CallbackReceiver, client: httpx.AsyncClient) -> None:
        seen: list[dict[str, Any]] = []
        reg = receiver.register(on_update=seen.append)
        for _ in range(2):
            resp = await client.post(reg.url, json=luma("g1", "completed"))
            assert resp.status_code == 200  # Luma resends anything else
        assert [g["state"] for g in seen] == ["completed"]
        assert reg.latest("g1") == seen[0]
        assert receiver.updates() == 2

    run(scenario)


def test_updates_out_of_order_never_move_a_generation_backwards() -> None:
    async def scenario(receiver: CallbackReceiver, client: httpx.AsyncClient) -> None:
        reg = receiver.register()
        for state in ("dreaming", "queued"):
            await client.post(reg.url, json=luma("a", state))
        assert (reg.latest("a") or {})["state"] == "dreaming"
        for state in ("completed", "dreaming", "queued", "failed"):
            resp = await client.post(reg.url, json=luma("b", state))
            assert resp.status_code == 200
        latest = reg.latest("b")
        assert latest is not None
        assert latest["state"] == "completed"  # a terminal state is never replaced
        assert latest["failure_reason"] is None

    run(scenario)


def test_pixazo_statuses_are_normalised_and_ordered() -> None:
    async def scenario(receiver: CallbackReceiver, client: httpx.AsyncClient) -> None:
        reg = receiver.register()
        for status in ("QUEUED", "COMPLETED", "PROCESSING", "QUEUED"):
            resp = await client.post(reg.url, json=pixazo("px1", status))
            assert resp.status_code == 200
        done = await reg.wait("px1", timeout=1)
        assert done is not None
        assert done["state"] == "completed"
        assert done["provider"] == "pixazo"
        assert done["assets"]["video"] == "https://cdn.example/px1.mp4"
        await client.post(reg.url, json=pixazo("px2", "ERROR"))
        failed = reg.latest("px2")
        assert failed is not None and failed["state"] == "failed"

    run(scenario)


def test_unknown_and_closed_tokens_are_refused_and_nothing_is_stored() -> None:
    async def scenario(receiver: CallbackReceiver, client: httpx.AsyncClient) -> None:
        reg = receiver.register()
        other = receiver.register()
        assert reg.token != other.token and len(reg.token) >= 43
        assert reg.token not in repr(reg)
        resp = await client.post(
            f"{receiver.base_url}/callbacks/not-a-token", json=luma("g", "queued")
        )
        assert resp.status_code == 404
        resp = await client.post(reg.url + "/extra", json=luma("g", "queued"))
        assert resp.status_code == 404
        waiter = asyncio.create_task(reg.wait("g", timeout=10))
        await asyncio.sleep(0.01)
        reg.close()
        assert await waiter is None  # closing sends waiters back to polling
        resp = await client.post(reg.url, json=luma("g", "completed"))
        assert resp.status_code == 404
        assert reg.latest("g") is None
        assert other.latest("g") is None
        assert receiver.updates() == 0

    run(scenario)


def test_oversized_bodies_get_413_and_nothing_is_stored() -> None:
    async def scenario(receiver: CallbackReceiver, client: httpx.AsyncClient) -> None:
        reg = receiver.register()
        big = json.dumps(luma("g1", "completed", padding="x" * 5000)).encode()
        resp = await client.post(reg.url, content=big)
        assert resp.status_code == 413
        assert reg.latest("g1") is None
        assert receiver.updates() == 0
        # The receiver still works after closing that connection.
        resp = await client.post(reg.url, json=luma("g1", "queued"))
        assert resp.status_code == 200

    run(scenario, max_body=4096)


def test_streamed_oversized_body_is_not_stored() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield json.dumps(luma("g1", "completed"))[:-1].encode() + b',"padding": "'
        for _ in range(20):
            yield b"x" * 1000
        yield b'"}'

    async def scenario(receiver: CallbackReceiver, client: httpx.AsyncClient) -> None:
        reg = receiver.register()
        try:
            resp = await client.post(reg.url, content=chunks())
            assert resp.status_code == 413
        except httpx.TransportError:
            pass  # the server may close before the client reads the 413; either way: refused
        assert reg.latest("g1") is None
        assert receiver.updates() == 0

    run(scenario, max_body=4096)


GARBAGE: dict[str, bytes] = {
    "empty": b"",
    "not json": b"hello",
    "truncated json": json.dumps(luma("g1", "completed")).encode()[:40],
    "invalid utf-8": b'{"id": "\xff\xfe", "state": "completed"}',
    "array": b'[{"id": "g1", "state": "completed"}]',
    "no id": json.dumps({"state": "completed"}).encode(),
    "empty id": json.dumps(luma("", "completed")).encode(),
    "numeric id": json.dumps(luma("g1", "completed") | {"id": 7}).encode(),
    "unknown state": json.dumps(luma("g1", "exploded")).encode(),
    "unknown pixazo status": json.dumps(pixazo("g1", "DONE")).encode(),
    "pixazo media as object": json.dumps(
        pixazo("g1", "COMPLETED") | {"output": {"media_url": {"a": 1}}}
    ).encode(),
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_is_refused_with_400_and_not_echoed(name: str) -> None:
    async def scenario(receiver: CallbackReceiver, client: httpx.AsyncClient) -> None:
        reg = receiver.register()
        resp = await client.post(reg.url, content=GARBAGE[name])
        assert resp.status_code == 400
        assert resp.json()["ok"] is False
        assert b"g1" not in resp.content and b"exploded" not in resp.content
        assert reg.latest("g1") is None
        assert receiver.updates() == 0
        # The same connection keeps serving.
        resp = await client.post(reg.url, json=luma("g1", "queued"))
        assert resp.status_code == 200

    run(scenario)


def test_methods_other_than_post_get_405() -> None:
    async def scenario(receiver: CallbackReceiver, client: httpx.AsyncClient) -> None:
        reg = receiver.register()
        for method in ("GET", "PUT", "DELETE", "HEAD"):
            resp = await client.request(method, reg.url)
            assert resp.status_code == 405
            assert resp.headers["allow"] == "POST"
        resp = await client.get(f"{receiver.base_url}/")
        assert resp.status_code == 404
        assert receiver.updates() == 0

    run(scenario)


def test_public_url_is_used_for_callback_urls() -> None:
    async def scenario(receiver: CallbackReceiver, client: httpx.AsyncClient) -> None:
        reg = receiver.register()
        assert reg.url == f"https://hooks.example/base/callbacks/{reg.token}"
        assert receiver.base_url == "https://hooks.example/base"

    run(scenario, public_url="https://hooks.example/base/")
    with pytest.raises(DreamError) as caught:
        CallbackReceiver(public_url="ftp://nope")
    assert caught.value.field == "public_url"


def test_stop_sends_waiters_back_to_polling() -> None:
    async def go() -> None:
        receiver = CallbackReceiver()
        await receiver.start()
        reg = receiver.register()
        waiter = asyncio.create_task(reg.wait("g1", timeout=10))
        await asyncio.sleep(0.01)
        await receiver.stop()
        assert await asyncio.wait_for(waiter, 1) is None

    asyncio.run(go())


CLI_SCRIPT = textwrap.dedent(
    """
    import argparse, sys
    from dreamnodes.cli.webhook import add_webhook_arguments, serve_webhooks
    parser = argparse.ArgumentParser()
    add_webhook_arguments(parser)
    sys.exit(serve_webhooks(parser.parse_args(sys.argv[1:])))
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_url_then_one_line_per_update_and_exits_cleanly(signum: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI_SCRIPT, "--max-body", "65536"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and "/callbacks/" in url
        with httpx.Client() as client:
            assert client.post(url, json=luma("g1", "dreaming")).status_code == 200
            assert client.post(url, json=luma("g1", "dreaming")).status_code == 200
            assert client.post(url, json=luma("g1", "completed")).status_code == 200
            assert client.post(url + "x", json=luma("g2", "completed")).status_code == 404
        first = json.loads(proc.stdout.readline())
        second = json.loads(proc.stdout.readline())
        assert (first["id"], first["state"]) == ("g1", "dreaming")
        assert (second["id"], second["state"]) == ("g1", "completed")
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert out == ""  # the duplicate and the refused callback printed nothing
    assert "Traceback" not in err
