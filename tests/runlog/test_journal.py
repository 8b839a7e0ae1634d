"""The run log around a run, and loops that resume without paying twice."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from dreamnodes.execution.runner import Runner
from dreamnodes.runlog.recorded import run_recorded
from dreamnodes.runlog.reservations import Reservations, Unit
from dreamnodes.runlog.store import RunStore, resume_key

BASE = "http://luma.test/dream-machine/v1"
PARAMS = {"model": "ray-2", "prompt": "A fox in the snow, item 7"}
BODY = {"generation_type": "video", "model": "ray-2", "prompt": "A fox in the snow, item 7"}


class Server:
    """Holds generations made earlier; counts the creates it is sent."""

    def __init__(self, generations: list[dict[str, Any]]) -> None:
        self.generations = generations
        self.creates = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.creates += 1
            made = {**self.generations[0], "id": f"new-{self.creates}"}
            return httpx.Response(201, json=made)
        if request.url.path.endswith("/generations"):
            return httpx.Response(
                200,
                json={
                    "generations": self.generations,
                    "count": len(self.generations),
                    "has_more": False,
                    "limit": 50,
                    "offset": 0,
                },
            )
        gid = request.url.path.rsplit("/", 1)[-1]
        found = [g for g in self.generations if g["id"] == gid]
        return httpx.Response(200, json=found[0]) if found else httpx.Response(404, json={})


def generation(gid: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "id": gid,
        "state": "completed",
        "model": "ray-2",
        "created_at": now,
        "generation_type": "video",
        "failure_reason": None,
        "assets": {"video": f"https://cdn.test/{gid}.mp4"},
        "request": {**BODY, "loop": False},
    }


def rerun(server: Server, store: RunStore) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with Runner(
            api_key="k",
            base_url=BASE,
            transport=httpx.MockTransport(server),
            retry={"max_attempts": 1},
        ) as runner:
            return await run_recorded(runner, store, "dream_machine", PARAMS, index=7)

    return asyncio.run(go())


def earlier_run(store: RunStore, generation_id: str | None) -> None:
    key = resume_key("dream_machine", "luma", BASE, 7, BODY)
    run_id = store.start(
        node="dream_machine",
        provider="luma",
        params=PARAMS,
        context=None,
        options={},
        resume_key=key,
    )
    # What the protocol wrote: the unit reserved, the create about to leave, maybe its answer.
    book = Reservations(store)
    unit = book.try_reserve(key, run_id)
    assert isinstance(unit, Unit)
    book.sending(unit)
    if generation_id:
        book.created(unit, generation_id)
        store.set_generation(run_id, generation_id)
    book.release(unit)
    store.finish(run_id, error={"code": "network_error", "message": "answer lost"})


def test_a_loop_run_again_picks_up_the_generation_an_earlier_run_recorded(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "runs.sqlite3"))
    earlier_run(store, "gen-recorded")
    server = Server([generation("gen-recorded")])
    assert rerun(server, store)["id"] == "gen-recorded"
    assert server.creates == 0


def test_a_lost_create_of_an_earlier_run_is_found_before_paying_again(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "runs.sqlite3"))
    earlier_run(store, None)  # sent, answer lost, lookup failed: nothing recorded
    time.sleep(0.01)
    server = Server([generation("gen-lost-answer")])
    out = rerun(server, store)
    assert out["id"] == "gen-lost-answer"
    assert server.creates == 0
    assert store.list(limit=1)[0].generation_id == "gen-lost-answer"


def test_a_first_run_creates_without_looking(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "runs.sqlite3"))
    server = Server([generation("gen-other")])
    assert rerun(server, store)["id"] == "new-1"
    assert server.creates == 1
