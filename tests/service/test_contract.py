"""`dreamnodes serve`'s HTTP contract against a real loopback server and the sandbox."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from dreamnodes.sandbox import Sandbox
from dreamnodes.service.app import Service, serve_in_thread
from dreamnodes.service.schemas import served_nodes
from service.support import PROVIDER_KEY, SECRET, TOKEN, config_for

RUNS = "/v1/nodes/dream_machine/runs"
PARAMS = {"model": "Ray 2 (best)", "prompt": "A tiger walking in snow", "loop": "No"}


def finished(client: httpx.Client, run_id: str, seconds: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run: dict[str, Any] = client.get(f"/v1/runs/{run_id}").json()
        if run["status"] != "running":
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


def test_every_api_call_needs_the_token(served: tuple[Service, str]) -> None:
    url = served[1]
    for path in ("/v1/nodes", "/v1/nodes/dream_machine", "/v1/runs", "/v1/runs/r_x"):
        assert httpx.get(url + path).status_code == 401
        wrong = httpx.get(url + path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"].startswith("Bearer")
    for path in (RUNS, "/v1/nodes/dream_machine/batches"):
        assert httpx.post(url + path, json={"params": PARAMS}).status_code == 401


def test_the_openapi_document_is_public(served: tuple[Service, str]) -> None:
    # It holds only the schemas; tools (Dify, GPT actions) import it by URL with no headers.
    answer = httpx.get(served[1] + "/openapi.json")
    assert answer.status_code == 200
    assert answer.json()["openapi"].startswith("3.1")


def test_loopback_by_default(served: tuple[Service, str]) -> None:
    from dreamnodes.cli.entry import build_parser

    assert served[1].startswith("http://127.0.0.1:")
    args = build_parser("serve").parse_args(["serve"])
    assert args.host == "127.0.0.1"


def test_an_input_error_is_a_422_naming_every_field(client: httpx.Client) -> None:
    body = {
        "params": {"model": "ray-2", "prompt": "A tiger", "aspect_ratio": "5:4"},
        "wait": "soon",
        "colour": "red",
        "notify_url": "ftp://x",
    }
    answer = client.post(RUNS, json=body)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_input"
    assert set(error["fields"]) == {"colour", "wait", "notify_url", "aspect_ratio"}
    only_params = client.post(RUNS, json={"params": {"model": "ray-2", "aspect_ratio": "5:4"}})
    assert only_params.status_code == 422
    # exactly the command line's error for the same params
    assert only_params.json()["error"]["field"] == "aspect_ratio"
    assert only_params.json()["error"]["message"].startswith('aspect_ratio: "5:4" is not allowed')
    assert client.post(RUNS, content=b"{not json").status_code == 422
    assert client.post("/v1/nodes/no_such_node/runs", json={"params": {}}).status_code == 404


def test_body_and_batch_sizes_are_capped(client: httpx.Client) -> None:
    big = client.post(RUNS, json={"params": {"prompt": "x" * (2 << 20)}})
    assert big.status_code == 413
    many = client.post(
        "/v1/nodes/dream_machine/batches", json={"items": [{}] * 1001, "params": PARAMS}
    )
    assert many.status_code == 422
    assert many.json()["error"]["fields"] == ["items"]


def test_202_at_once_then_the_finished_run(client: httpx.Client) -> None:
    answer = client.post(RUNS, json={"params": PARAMS, "wait": "poll"})
    assert answer.status_code == 202
    run = answer.json()
    assert run["status"] == "running" and run["id"].startswith("r_")
    assert run["links"]["self"] == f"/v1/runs/{run['id']}"
    done = finished(client, run["id"])
    assert done["status"] == "succeeded"
    assert done["output"]["state"] == "completed"
    assert done["output"]["assets"]["video"].endswith(".mp4")
    listed = client.get("/v1/runs", params={"node": "dream_machine", "limit": 200}).json()
    assert run["id"] in [r["id"] for r in listed["runs"]]


def test_prefer_wait_returns_the_finished_run(client: httpx.Client) -> None:
    answer = client.post(
        RUNS, json={"params": PARAMS, "wait": "poll"}, headers={"Prefer": "wait=30"}
    )
    assert answer.status_code == 200
    assert answer.json()["status"] == "succeeded"
    assert answer.headers["preference-applied"] == "wait=30"


def test_an_idempotency_key_makes_one_generation(client: httpx.Client, sandbox: Sandbox) -> None:
    before = len(sandbox.generations())
    headers = {"Idempotency-Key": "order-1234"}
    body = {"params": PARAMS, "wait": "poll"}
    first = client.post(RUNS, json=body, headers=headers)
    second = client.post(RUNS, json=body, headers=headers)
    assert first.json()["id"] == second.json()["id"]
    assert second.headers.get("idempotent-replayed") == "true"
    assert finished(client, first.json()["id"])["status"] == "succeeded"
    third = client.post(RUNS, json=body, headers=headers)
    assert third.status_code == 200 and third.json()["id"] == first.json()["id"]
    assert len(sandbox.generations()) == before + 1
    other = client.post(RUNS, json={"params": {**PARAMS, "prompt": "A fox"}}, headers=headers)
    assert other.status_code == 422 and other.json()["error"]["field"] == "Idempotency-Key"


def test_an_idempotency_key_names_one_batch(client: httpx.Client, sandbox: Sandbox) -> None:
    before = len(sandbox.generations())
    batches = "/v1/nodes/dream_machine/batches"
    headers = {"Idempotency-Key": "batch-order-77"}
    body = {"items": ["A heron", "A crane"], "params": {"prompt": "{{item}} in rain"}}
    first = client.post(batches, json={**body, "wait": "poll"}, headers=headers)
    second = client.post(batches, json={**body, "wait": "poll"}, headers=headers)
    assert first.status_code == 202 and second.json()["id"] == first.json()["id"]
    assert second.headers.get("idempotent-replayed") == "true"
    deadline = time.monotonic() + 60
    while client.get(f"/v1/batches/{first.json()['id']}").json()["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    third = client.post(batches, json={**body, "wait": "poll"}, headers=headers)
    assert third.status_code == 200 and third.json()["id"] == first.json()["id"]
    assert third.json()["status"] == "succeeded"
    assert len(sandbox.generations()) == before + 2
    other = client.post(batches, json={**body, "wait": "none"}, headers=headers)
    assert other.status_code == 422 and other.json()["error"]["field"] == "Idempotency-Key"
    run = client.post(RUNS, json={"params": PARAMS}, headers=headers)
    assert run.status_code == 422 and run.json()["error"]["field"] == "Idempotency-Key"


def test_retry_of_a_failed_run_picks_up_its_generation(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    before = len(sandbox.generations())
    failed = client.post(
        RUNS,
        json={"params": PARAMS, "wait": "poll", "timeout": 0.05},
        headers={"Prefer": "wait=30"},
    ).json()
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "wait_timeout"
    assert failed["links"]["retry"] == f"/v1/runs/{failed['id']}/retry"
    again = client.post(
        f"/v1/runs/{failed['id']}/retry", json={"timeout": 60}, headers={"Prefer": "wait=30"}
    )
    assert again.status_code == 200, again.text
    run = again.json()
    assert run["status"] == "succeeded" and run["retry_of"] == failed["id"]
    assert run["generation_id"] == failed["generation_id"]
    assert len(sandbox.generations()) == before + 1
    refused = client.post(f"/v1/runs/{run['id']}/retry")
    assert refused.status_code == 422


def test_a_batch_runs_every_item_in_order(client: httpx.Client) -> None:
    items = [{"animal": a} for a in ("tiger", "fox", "owl", "bear", "wolf")]
    params = {"model": "ray-flash-2", "prompt": "A {{item.animal}} in snow"}
    answer = client.post(
        "/v1/nodes/dream_machine/batches", json={"items": items, "params": params, "wait": "poll"}
    )
    assert answer.status_code == 202
    batch_id = answer.json()["id"]
    deadline = time.monotonic() + 60
    while (batch := client.get(f"/v1/batches/{batch_id}").json())["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert batch["status"] == "succeeded" and batch["done"] == batch["total"] == 5
    prompts = [item["output"]["request"]["prompt"] for item in batch["items"]]
    assert prompts == [f"A {i['animal']} in snow" for i in items]
    runs = {item["run_id"] for item in batch["items"]}
    assert len(runs) == 5 and all(client.get(f"/v1/runs/{r}").status_code == 200 for r in runs)


def test_the_openapi_document_is_valid_with_one_operation_per_node(
    client: httpx.Client,
) -> None:
    from openapi_spec_validator import validate

    document = client.get("/openapi.json").json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    operations = [(p, m) for p, ops in document["paths"].items() for m in ops]
    assert sorted(operations) == sorted(
        [*((f"/v1/nodes/{n['id']}/runs", "post") for n in served_nodes()), ("/v1/engine", "get")]
    )
    assert "$ref" not in json.dumps(document["paths"]).replace('"$ref": "#/components', "")
    model = document["paths"][RUNS]["post"]["requestBody"]["content"]["application/json"]
    options = model["schema"]["properties"]["params"]["properties"]["model"]["oneOf"]
    assert {"const": "ray-2", "title": "Ray 2 (best)"} in options
    node = client.get("/v1/nodes/dream_machine").json()
    assert node["input_schema"]["properties"]["model"]["oneOf"] == options
    assert node["output_schema"]["title"] == "Generation"


def test_the_engine_says_runs_are_done_here_and_needs_the_token(client: httpx.Client) -> None:
    answer = client.get("/v1/engine")
    assert answer.status_code == 200
    assert answer.json()["engine"] == "embedded"
    assert answer.json()["queue"] is None
    stranger = httpx.get(str(client.base_url) + "/v1/engine")
    assert stranger.status_code == 401


def test_a_private_notify_url_is_refused(client: httpx.Client) -> None:
    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/", "http://10.0.0.1/x"):
        answer = client.post(RUNS, json={"params": PARAMS, "notify_url": url})
        assert answer.status_code == 422, url
        assert answer.json()["error"]["field"] == "notify_url"


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((dict(self.headers), body))
        self.send_response(500 if len(_Hook.received) == 1 else 204)  # the first is retried
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/resume?token=abc"
    server.shutdown()


def test_notifications_are_signed_retried_and_allowed_to_private_only_on_opt_in(
    sandbox: Sandbox, tmp_path: Path, hook: str
) -> None:
    config = config_for(sandbox, tmp_path / "runs.sqlite3", allow_private_urls=True)
    with serve_in_thread(config) as (_, url):
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"})
        run = client.post(
            RUNS,
            json={"params": PARAMS, "wait": "poll", "notify_url": hook},
            headers={"Prefer": "wait=30"},
        ).json()
        deadline = time.monotonic() + 20
        while len(_Hook.received) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        headers, body = _Hook.received[-1]
        expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Dreamnodes-Signature"], f"sha256={expected}")
        sent = json.loads(body)
        assert sent["event"] == "run.finished" and sent["run"]["id"] == run["id"]
        assert sent["run"]["status"] == "succeeded"
        deadline = time.monotonic() + 5
        while not (notes := client.get(f"/v1/runs/{run['id']}").json()["notifications"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert notes[0]["status"] == "delivered" and notes[0]["attempts"] == 2


def test_the_provider_key_is_never_in_an_answer(client: httpx.Client) -> None:
    run = client.post(
        RUNS,
        json={"params": {**PARAMS, "prompt": f"say {PROVIDER_KEY}"}, "wait": "poll"},
        headers={"Prefer": "wait=30"},
    )
    answers = [
        run,
        client.get("/v1/runs", params={"limit": 200}),
        client.get("/v1/nodes"),
        client.get(f"/v1/runs/{run.json()['id']}"),
        client.get("/openapi.json"),
    ]
    # A batch whose items echo the key, read while it runs (12 items: two wait for a running
    # slot while ten are done) and once it ended.
    items = [f"say {PROVIDER_KEY}", f"say {PROVIDER_KEY.upper()} twice"] * 6
    body = {"items": items, "params": {**PARAMS, "prompt": "{{item}}"}, "wait": "poll"}
    posted = client.post("/v1/nodes/dream_machine/batches", json=body)
    answers.append(posted)
    deadline = time.monotonic() + 60
    while True:
        answers.append(client.get(f"/v1/batches/{posted.json()['id']}"))
        if answers[-1].json()["status"] != "running":
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert answers[-1].json()["succeeded"] == 12
    assert any(a.json().get("status") == "running" and a.json()["done"] for a in answers)
    assert answers[-1].json()["items"][1]["output"]["request"]["prompt"] == "say [redacted] twice"
    for answer in answers:
        assert PROVIDER_KEY not in answer.text and PROVIDER_KEY.upper() not in answer.text
        assert TOKEN not in answer.text and SECRET not in answer.text
