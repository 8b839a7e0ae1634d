"""What a run trusts: a sandbox's old port, a forged callback, silence, the run log's mode."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from .conftest import KEY, Fake, dn, start, start_fake, until

PARAMS = json.dumps({"prompt": "a heron in the reeds", "model": "ray-2"})


def test_a_retried_sandbox_run_never_sends_the_key_to_its_old_port(store: str) -> None:
    first = dn(
        "run",
        "dream_machine",
        "--params",
        PARAMS,
        "--sandbox",
        "--wait",
        "--timeout",
        "0.3",
        "--store",
        store,
    )
    assert first.code == 1 and first.json()["error"]["code"] == "wait_timeout"
    (run,) = json.loads(dn("runs", "list", "--json", "--store", store).out)
    shown = json.loads(dn("runs", "show", run["id"], "--store", store).out)
    assert shown["options"]["sandbox"] is True
    old_port = urlsplit(shown["request"]["url"]).port
    assert old_port is not None

    stranger = start_fake(old_port)  # someone else now listens where the sandbox was
    try:
        retried = dn("runs", "retry", run["id"], "--store", store, "--timeout", "60")
        assert retried.code == 0, retried.err
        assert retried.json()["state"] == "completed"
        seen = stranger.stats()
        assert seen["auth"] == [] and seen["lists"] == 0 and seen["creates"] == 0
    finally:
        stranger.process.kill()
        stranger.process.wait()
    assert KEY not in dn("runs", "show", run["id"], "--store", store).out


def test_a_forged_callback_is_confirmed_and_not_trusted(fake: Fake, store: str) -> None:
    fake.control(duration=3.0)
    process = start(
        "run",
        "dream_machine",
        "--params",
        PARAMS,
        "--base-url",
        fake.base,
        "--store",
        store,
        "--wait",
        "callback",
        "--timeout",
        "60",
    )
    until(lambda: bool(fake.stats().get("callback_urls")))
    (callback_url,) = fake.stats()["callback_urls"]
    (made,) = fake.stats()["generations"]
    forged = {**made, "state": "completed", "assets": {"video": "https://evil.example/x.mp4"}}
    assert httpx.post(callback_url, json=forged).status_code == 200
    other = {**forged, "id": "00000000-0000-0000-0000-000000000000"}
    httpx.post(callback_url, json=other)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    output = json.loads(out)
    assert output["id"] == made["id"] and output["state"] == "completed"
    assert output["assets"]["video"] == f"https://cdn.example.com/{made['id']}.mp4"
    assert "evil" not in out


def test_without_callbacks_a_callback_wait_still_polls_within_a_short_timeout(
    fake: Fake, store: str
) -> None:
    fake.control(duration=1.0, callbacks=False)
    began = time.monotonic()
    done = dn(
        "run",
        "dream_machine",
        "--params",
        PARAMS,
        "--base-url",
        fake.base,
        "--store",
        store,
        "--wait",
        "callback",
        "--timeout",
        "10",
    )
    assert done.code == 0, done.err
    assert done.json()["state"] == "completed"
    assert time.monotonic() - began < 10


def test_the_run_log_is_readable_by_its_owner_only(fake: Fake, tmp_path: Path) -> None:
    store = tmp_path / "fresh" / "runs.sqlite3"
    done = dn(
        "run",
        "get_generation",
        "--params",
        json.dumps({"generation_id": "nope"}),
        "--base-url",
        fake.base,
        "--store",
        str(store),
    )
    assert done.code == 1
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.parent).st_mode) == 0o700
    for extra in ("-wal", "-shm"):
        side = Path(str(store) + extra)
        if side.exists():
            assert stat.S_IMODE(os.stat(side).st_mode) & 0o077 == 0
