"""vcrpy set-up for the node cassettes, and the player that runs a scenario's steps.

Cassettes are recorded against the sandbox on a fixed address (``RECORD_HOST``:``RECORD_PORT``)
so asset URLs inside them are the same on every recording; replays use the same base URLs and
never open a socket (``record_mode="none"`` unless ``DREAMNODES_RECORD=1``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import vcr
from vcr.cassette import Cassette

from dreamnodes.catalog.package import load_package
from dreamnodes.errors import DreamError
from dreamnodes.execution.runner import Runner
from dreamnodes.preparation import templates
from dreamnodes.preparation.prepare import Prepared

ROOT = Path(__file__).resolve().parents[1]
CASSETTES = ROOT / "cassettes"
RECORD_HOST = "127.0.0.1"
RECORD_PORT = 8787
BASE = f"http://{RECORD_HOST}:{RECORD_PORT}"
BASE_URLS = {"luma": BASE + "/dream-machine/v1", "pixazo": BASE, "luma_agents": BASE + "/agents/v1"}
# Distinctive fake keys: test_cassettes_clean.py asserts they never reach a cassette.
TEST_KEYS = {
    "luma": "luma-test-key-do-not-leak-0001",
    "pixazo": "pixazo-test-key-do-not-leak-0001",
    "luma_agents": "luma-api-agents-test-key-do-not-leak-0001",
}
# Uploads of local files are cached across runs by default: never between recordings/replays.
os.environ["DREAMNODES_UPLOAD_CACHE"] = "off"
FILTERED = "<filtered>"
SECRET_HEADERS = ("authorization", "ocp-apim-subscription-key", "cookie", "set-cookie")
_SECRET_QUERY = re.compile(r"(?i)^(api[_-]?key|key|token|access[_-]?token|subscription[_-]?key)$")


def recording() -> bool:
    return os.environ.get("DREAMNODES_RECORD") == "1"


def cassette_path(node_id: str, scenario: str) -> Path:
    return CASSETTES / node_id / f"{scenario}.yaml"


# -- scrubbing --------------------------------------------------------------------------------
def _scrub_text(text: str) -> str:
    for key in TEST_KEYS.values():
        text = text.replace(key, FILTERED)
    return text


def scrub_request(request: Any) -> Any:
    """Drop secrets vcrpy's filter_headers does not see: keys in the body or the query."""
    body = request.body
    if isinstance(body, bytes):
        with contextlib.suppress(UnicodeDecodeError):  # a binary upload: no text key to find
            request.body = _scrub_text(body.decode("utf-8")).encode()
    elif isinstance(body, str):
        request.body = _scrub_text(body)
    parts = urlsplit(request.uri)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(_SECRET_QUERY.match(k) for k, _ in pairs):  # leave other URIs byte for byte
        query = urlencode([(k, FILTERED if _SECRET_QUERY.match(k) else v) for k, v in pairs])
        request.uri = parts._replace(query=query).geturl()
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Response headers are not covered by filter_headers: drop cookies, mask keys in bodies."""
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in SECRET_HEADERS:
            headers[name] = [FILTERED]
    body = response.get("body", {}).get("string")
    if isinstance(body, bytes) and _looks_textual(headers):
        response["body"]["string"] = _scrub_text(body.decode("utf-8", "replace")).encode()
    return response


def _looks_textual(headers: Mapping[str, Any]) -> bool:
    for name, values in headers.items():
        if name.lower() == "content-type":
            return any("json" in v or v.startswith("text/") for v in values)
    return False


# -- matching ---------------------------------------------------------------------------------
def _parsed(body: Any) -> Any:
    if body in (None, b"", ""):
        return None
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return body


def json_body(r1: Any, r2: Any) -> None:
    """Bodies match by parsed JSON value, so key order and spacing never break a replay."""
    a, b = _parsed(r1.body), _parsed(r2.body)
    if a != b:
        raise AssertionError(f"body {a!r} != {b!r}")


def make_vcr(*, record: bool | None = None) -> vcr.VCR:
    """The one vcrpy configuration: method + path + query + JSON body; host and port ignored."""
    record = recording() if record is None else record
    config = vcr.VCR(
        serializer="yaml",
        record_mode="all" if record else "none",
        match_on=["method", "path", "query", "json_body"],
        filter_headers=[(name, FILTERED) for name in SECRET_HEADERS],
        before_record_request=scrub_request,
        before_record_response=scrub_response,
        decode_compressed_response=True,
    )
    config.register_matcher("json_body", json_body)
    return config


# -- playing a scenario -----------------------------------------------------------------------
@dataclass
class StepResult:
    """One step as played: what was prepared and sent, and what the user got back."""

    step: Mapping[str, Any]
    context: dict[str, Any]
    prepared: Prepared | None
    output: dict[str, Any]
    error: DreamError | None = None
    interactions: list[int] = field(default_factory=list)  # cassette indices this step used


async def _no_sleep(_: float) -> None:
    return None


def steps_available(scenario: Mapping[str, Any], node_ids: set[str] | None = None) -> bool:
    """Whether every node the scenario uses is in manifest.json (else it waits for that node)."""
    known = node_ids if node_ids is not None else set(load_package().nodes)
    return all(step["node"] in known for step in scenario["steps"])


async def play(
    scenario: Mapping[str, Any],
    *,
    cassette: Cassette | None = None,
    base_urls: Mapping[str, str] = BASE_URLS,
    replay: bool = True,
    download_dir: str | None = None,
    timeout: float = 120.0,
) -> list[StepResult]:
    """Play the steps in order through Runner; a step's context gets `steps` (earlier outputs).

    On replay nothing sleeps and nothing is retried (a mismatch must fail, not be retried);
    when recording, polls are scaled down to match a fast sandbox.
    """
    from dreamnodes.execution.uploads import forget

    forget()  # an upload of an earlier scenario is not in this one's cassette
    runners: dict[str, Runner] = {}
    results: list[StepResult] = []
    sleep: Callable[[float], Awaitable[None]] | None = _no_sleep if replay else None

    def runner(provider: str) -> Runner:
        if provider not in runners:
            options: dict[str, Any] = {"sleep": sleep} if sleep else {}
            runners[provider] = Runner(
                api_key=TEST_KEYS[provider],
                provider=provider,
                base_url=base_urls[provider],
                retry={"max_attempts": 1} if replay else None,
                poll_scale=1e6 if replay else 20.0,
                **options,
            )
        return runners[provider]

    try:
        for step in scenario["steps"]:
            context = {**step.get("context", {}), "steps": [r.output for r in results]}
            before = _position(cassette, replay)
            run = runner(step.get("provider", "luma"))
            prepared: Prepared | None = None
            error: DreamError | None = None
            try:
                wait = step.get("wait", "none")
                prepared = await run.prepare_for(step["node"], step["params"], context, wait=wait)
                output = await run.execute(
                    prepared,
                    wait=wait,
                    timeout=timeout,
                    download_dir=download_dir if step.get("download") else None,
                )
            except DreamError as exc:
                if "error" not in step:
                    raise
                error, output = exc, {"error": exc.to_dict()}
            results.append(
                StepResult(step, context, prepared, output, error, _used(cassette, replay, before))
            )
    finally:
        for r in runners.values():
            await r.aclose()
    return results


def _position(cassette: Cassette | None, replay: bool) -> set[int] | int:
    if cassette is None:
        return 0
    return set(cassette.play_counts) if replay else len(cassette.data)


def _used(cassette: Cassette | None, replay: bool, before: set[int] | int) -> list[int]:
    if cassette is None:
        return []
    if replay:
        assert isinstance(before, set)
        return sorted(set(cassette.play_counts) - before)
    assert isinstance(before, int)
    return list(range(before, len(cassette.data)))


def expected(step: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
    """A step's `expect`, with its templates resolved against the step's context."""
    return templates.render(step.get("expect", {}), context)


def contains(actual: Any, wanted: Any) -> bool:
    """Dicts: every wanted key present with a contained value; anything else: equal."""
    if isinstance(wanted, Mapping):
        return isinstance(actual, Mapping) and all(
            k in actual and contains(actual[k], v) for k, v in wanted.items()
        )
    return bool(actual == wanted)
