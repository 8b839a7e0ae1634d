"""A fake Dream Machine API that is not the sandbox: counts creates, loses answers on demand.

Run as a process (``python fake_luma.py``): it prints ``fake: http://127.0.0.1:PORT`` and serves
until killed. ``POST /_control`` sets its behaviour, ``GET /_stats`` tells what it saw:
every create (and the Authorization headers it was sent), 429s, list calls.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BASE = "/dream-machine/v1"
control: dict[str, Any] = {
    "duration": 2.0,  # seconds a generation dreams before it completes
    "accept_delay": 0.0,  # seconds between receiving a create and making its generation
    "answer_delay": 0.0,  # seconds between making a generation and answering its create
    "answer_delays": [],  # per create, in order, before answer_delay applies
    "lose_answers": 0,  # creates whose answer is lost (made, then the connection breaks)
    "fail_lists": 0,  # list calls answered 503
    "running_cap": 0,  # creates beyond this many dreaming get 429 (0: no cap)
    "callbacks": True,  # POST the finished generation to its callback_url
}
generations: dict[str, dict[str, Any]] = {}
stats: dict[str, Any] = {"creates": 0, "refused_429": 0, "lists": 0, "auth": [], "callbacks": []}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _state(gen: dict[str, Any]) -> dict[str, Any]:
    if gen["state"] == "dreaming" and time.time() >= gen["_done_at"]:
        gen["state"] = "completed"
        gen["assets"] = {"video": f"https://cdn.example.com/{gen['id']}.mp4"}
        gen["_seen"] = time.time()  # when it was first told completed
    return {k: v for k, v in gen.items() if not k.startswith("_")}


def _running() -> int:
    return sum(1 for g in generations.values() if _state(g)["state"] == "dreaming")


async def _call_back(gen_id: str, url: str) -> None:
    gen = generations[gen_id]
    await asyncio.sleep(max(0.0, gen["_done_at"] - time.time()))
    if not control["callbacks"]:
        return
    async with httpx.AsyncClient() as client:
        try:
            answer = await client.post(url, json=_state(gen))
            stats["callbacks"].append(answer.status_code)
        except httpx.HTTPError:
            stats["callbacks"].append(None)


class _Lost(Response):
    """Starts an answer it never finishes: the client sees the connection break."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"id": "', "more_body": True})
        raise ConnectionAbortedError("answer lost on purpose")


async def create(request: Request) -> Response:
    body = await request.json()
    stats["auth"].append(request.headers.get("authorization"))
    if control["running_cap"] and _running() >= control["running_cap"]:
        stats["refused_429"] += 1
        return JSONResponse({"detail": "Too many running generations"}, 429)
    if control["accept_delay"]:
        await asyncio.sleep(control["accept_delay"])
    stats["creates"] += 1
    gen_id = str(uuid.uuid4())
    generations[gen_id] = gen = {
        "id": gen_id,
        "state": "dreaming",
        "generation_type": "video",
        "model": body.get("model", "ray-2"),
        "created_at": _now(),
        "failure_reason": None,
        "assets": None,
        "request": body,
        "_created": time.time(),
        "_done_at": time.time() + control["duration"],
    }
    if body.get("callback_url"):
        stats.setdefault("callback_urls", []).append(body["callback_url"])
        asyncio.get_running_loop().create_task(_call_back(gen_id, body["callback_url"]))
    delay = control["answer_delays"].pop(0) if control["answer_delays"] else control["answer_delay"]
    if delay:
        await asyncio.sleep(delay)
    if control["lose_answers"] > 0:
        control["lose_answers"] -= 1
        return _Lost()
    return JSONResponse(_state(gen), 201)


async def get_one(request: Request) -> Response:
    gen = generations.get(request.path_params["gid"])
    if gen is None:
        return JSONResponse({"detail": "Generation not found"}, 404)
    gen["_gets"] = gen.get("_gets", 0) + 1
    return JSONResponse(_state(gen))


async def listing(request: Request) -> Response:
    stats["lists"] += 1
    if control["fail_lists"] > 0:
        control["fail_lists"] -= 1
        return JSONResponse({"detail": "unavailable"}, 503)
    limit = int(request.query_params.get("limit", 100))
    offset = int(request.query_params.get("offset", 0))
    newest = sorted(generations.values(), key=lambda g: g["created_at"], reverse=True)
    page = [_state(g) for g in newest[offset : offset + limit]]
    return JSONResponse(
        {
            "generations": page,
            "count": len(page),
            "has_more": offset + limit < len(newest),
            "limit": limit,
            "offset": offset,
        }
    )


async def set_control(request: Request) -> Response:
    control.update(await request.json())
    return JSONResponse(control)


async def get_stats(request: Request) -> Response:
    shown = [_state(g) for g in generations.values()]
    times = ("_created", "_done_at", "_seen", "_gets")  # when, for the benchmarks
    timings = [{k[1:]: g.get(k) for k in times} for g in generations.values()]
    return JSONResponse({**stats, "generations": shown, "timings": timings})


app = Starlette(
    routes=[
        Route(f"{BASE}/generations", create, methods=["POST"]),
        Route(f"{BASE}/generations/video", create, methods=["POST"]),
        Route(f"{BASE}/generations", listing, methods=["GET"]),
        Route(BASE + "/generations/{gid}", get_one, methods=["GET"]),
        Route("/_control", set_control, methods=["POST"]),
        Route("/_stats", get_stats, methods=["GET"]),
    ]
)


def main() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    print(f"fake: http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="critical", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
