"""`dreamnodes serve`: a 1,000-item batch at the account's limits, its makespan against the minimum.

The service and a sandbox with the Build tier's limits (20 video creates a minute, 10 at once)
run in this process, both on a clock `TIME_SCALE` times faster (the sandbox's durations and
minute, the service's limits window, polls and retry waits), as `bench/loop_limits.py` does for
`run --each`. One `POST /v1/nodes/dream_machine/batches` of COUNT items with `wait: poll`; the
makespan runs from that POST to the batch's signed `batch.finished` notification arriving at a
local hook (so the figure is not blurred by polling). The minimum is `_loop_common`'s formula
for the same limits. Usage:
    python bench/serve_batch.py [COUNT] [TIME_SCALE]
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
from _loop_common import theoretical_minimum

from dreamnodes.api.limits import Limits
from dreamnodes.sandbox import Sandbox, SandboxConfig
from dreamnodes.service import Endpoint, ServiceConfig
from dreamnodes.service.app import serve_in_thread

TOKEN = "bench-token-0123456789abcdef"
KEY = "bench-key-0123456789"


class _Hook(BaseHTTPRequestHandler):
    arrived: ClassVar[list[tuple[float, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.arrived.append((time.monotonic(), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
    cfg = SandboxConfig(port=0, time_scale=scale, api_key=KEY, render=False, credits_cents=1e9)
    hook = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp, Sandbox(cfg) as sandbox:
        config = ServiceConfig(
            token=TOKEN,
            store=str(Path(tmp) / "runs.sqlite3"),
            endpoints={"luma": Endpoint(sandbox.luma_url, KEY, sandbox=True)},
            sandbox_id=sandbox.base_url,
            limits=Limits().scaled(scale),  # the Build tier, on the sandbox's clock
            time_scale=scale,
            allow_private_urls=True,  # the hook is on loopback
            max_batch=max(1000, count),
        )
        with (
            serve_in_thread(config) as (_, url),
            httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
            ) as client,
        ):
            body = {
                "items": [f"a paper boat number {i} on a river" for i in range(count)],
                "params": {"model": "ray-2", "prompt": "{{item}}"},
                "wait": "poll",
                "notify_url": f"http://127.0.0.1:{hook.server_port}/done",
            }
            started = time.monotonic()
            answer = client.post("/v1/nodes/dream_machine/batches", json=body)
            accepted = time.monotonic() - started
            assert answer.status_code == 202, answer.text
            batch_id = answer.json()["id"]
            deadline = started + max(600.0, 20 * theoretical_minimum(count, cfg)[0])
            while not _Hook.arrived:
                assert time.monotonic() < deadline, "the batch did not finish in time"
                time.sleep(0.02)
            ended, note = _Hook.arrived[0]
            makespan = ended - started
            batch = client.get(f"/v1/batches/{batch_id}").json()
        posts = Counter(status for method, _, status in sandbox.request_log() if method == "POST")
        gets = sum(1 for method, _, _ in sandbox.request_log() if method == "GET")
        generations = len(sandbox.generations())
    hook.shutdown()
    best, formula = theoretical_minimum(count, cfg)
    items = batch["items"]
    prompts = [(i.get("output") or {}).get("request", {}).get("prompt") for i in items]
    in_order = prompts == body["items"]
    print(f"items {count}, time scale {scale:g}, batch accepted (202) in {accepted * 1000:.0f} ms")
    print(
        f"batch {batch['status']}: succeeded {batch['succeeded']}, failed {batch['failed']},"
        f" results in order {in_order}; notification event {note.get('event')}"
    )
    print(f"generations {generations}, 429s received {posts.get(429, 0)}")
    print(f"makespan {makespan:.2f} s wall (POST to the batch.finished notification)")
    print(f"theoretical minimum {best:.2f} s: {formula}")
    print(f"ratio {makespan / best:.3f} (goal <= 1.10)")
    print(f"polls per generation {gets / max(1, generations):.2f}")
    errors = Counter(
        (i["error"]["code"], i["error"]["message"][:100]) for i in items if i.get("error")
    )
    for (code, message), n in errors.most_common(5):
        print(f"  error x{n}: {code}: {message}")


if __name__ == "__main__":
    main()
