"""One suite for every node in manifest.json (read at collection time, so new nodes are covered).

Per node: the node file passes the meta-schema; its input examples validate and prepare; every
dynamic path segment is a declared input whose pattern cannot carry a `/`; a cassette exists;
and each recorded scenario replays (record_mode "none") to the output a user sees, with the
request the node maps equal to the recorded one. Scenarios live in tests/scenarios.py.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from scenarios import SCENARIOS

import cassettes
from dreamnodes.errors import DreamError
from dreamnodes.preparation.prepare import prepare

ROOT = cassettes.ROOT
MANIFEST = json.loads((ROOT / "manifest.json").read_text())
NODE_FILES = {entry["id"]: ROOT / entry["file"] for entry in MANIFEST["nodes"]}
NODE_IDS = list(NODE_FILES)
NO_REQUEST_KINDS = ("local", "trigger")  # they run on this machine: nothing to record


def _spec(node_id: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(NODE_FILES[node_id].read_text())
    return spec


def _schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((ROOT / "schemas").glob("*.json")):
        schema = json.loads(path.read_text())
        out[schema["$id"]] = schema
    return out


SCHEMAS = _schemas()
REGISTRY: Registry[Any] = Registry().with_resources(
    (uri, Resource.from_contents(s)) for uri, s in SCHEMAS.items()
)
SCHEMA_BASE = "https://dreamnodes.invalid/schemas/"


def _input_schema(node_id: str) -> dict[str, Any]:
    return SCHEMAS[SCHEMA_BASE + _spec(node_id)["input"]]


def _resolve(schema: dict[str, Any], base_uri: str) -> dict[str, Any]:
    """A property schema with its $ref chain merged in (the property's own keys win)."""
    merged = dict(schema)
    while "$ref" in merged:
        ref = merged.pop("$ref")
        resolved = REGISTRY.resolver(base_uri=base_uri).lookup(ref)
        base_uri = resolved.resolver._base_uri  # refs inside defs.json are relative to it
        merged = {**resolved.contents, **merged}
    return merged


def _path_params(node_id: str) -> list[tuple[str, str]]:
    return [
        (provider, name)
        for provider, pspec in _spec(node_id).get("providers", {}).items()
        for name in re.findall(r"\{([^}]+)\}", pspec["request"]["path"])
    ]


# -- the node file and its schema -----------------------------------------------------------------
@pytest.mark.parametrize("node_id", NODE_IDS)
def test_node_file_passes_the_meta_schema(node_id: str) -> None:
    meta = Draft202012Validator(SCHEMAS[SCHEMA_BASE + "node.schema.json"], registry=REGISTRY)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in meta.iter_errors(_spec(node_id))
    ]
    assert errors == []
    assert _spec(node_id)["id"] == node_id


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_input_examples_validate_and_prepare(node_id: str) -> None:
    schema = _input_schema(node_id)
    examples = schema.get("examples", [])
    assert examples, f"{node_id}: the input schema has no examples for form builders"
    validator = Draft202012Validator(schema, registry=REGISTRY)
    providers = list(_spec(node_id).get("providers", {})) or ["luma"]
    for example in examples:
        assert [e.message for e in validator.iter_errors(example)] == []
        # An example is for the default provider; others (Pixazo) may refuse e.g. text-to-video.
        prepared = prepare(node_id, example, provider=providers[0])
        if _spec(node_id)["kind"] in NO_REQUEST_KINDS:
            assert prepared.request is None
        else:
            assert prepared.request is not None
            assert "{" not in prepared.request.path


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_dynamic_path_segments_are_declared_inputs_that_cannot_carry_a_slash(node_id: str) -> None:
    schema = _input_schema(node_id)
    for provider, name in _path_params(node_id):
        assert name in schema["properties"], f"{provider}: path segment {{{name}}} is not an input"
        field = _resolve(schema["properties"][name], schema["$id"])
        assert "pattern" in field, f"{name}: a path segment needs a pattern"
        for bad in ("a/b", "../credits", "x/../../y", ""):
            assert not re.search(field["pattern"], bad), f"{name}: pattern accepts {bad!r}"
        # A valid call with a path-like id is refused on that field, before anything is sent.
        example = {**schema["examples"][0], name: "../credits"}
        with pytest.raises(DreamError) as caught:
            prepare(node_id, example, provider=provider)
        assert (caught.value.code, caught.value.field) == ("invalid_input", name)


# -- cassettes ------------------------------------------------------------------------------------
def _replayable() -> list[tuple[str, str]]:
    """Every scenario of a node in the manifest whose steps only use nodes that exist."""
    known = set(NODE_IDS)
    return [
        (node_id, name)
        for node_id, scenarios in SCENARIOS.items()
        if node_id in known
        for name, scenario in scenarios.items()
        if cassettes.steps_available(scenario, known)
    ]


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_cassette_exists(node_id: str) -> None:
    spec = _spec(node_id)
    if spec["kind"] in NO_REQUEST_KINDS:
        # Explicitly exempt: a local/trigger node has no provider request to record.
        assert "providers" not in spec
        pytest.skip(
            f"{node_id} is a {spec['kind']} node: it sends no API request, no cassette needed"
        )
    directory = cassettes.CASSETTES / node_id
    recorded = sorted(p.stem for p in directory.glob("*.yaml"))
    hint = f"record with: python tests/record_cassettes.py {node_id}"
    assert node_id in SCENARIOS, f"no scenarios for {node_id} in tests/scenarios.py"
    assert recorded, f"no cassette in {directory}; {hint}"
    wanted = sorted(name for n, name in _replayable() if n == node_id)
    assert recorded == wanted, f"cassettes {recorded} != scenarios {wanted}; {hint}"


def _recorded_request(cassette: Any, index: int, provider: str) -> dict[str, Any]:
    request = cassette.requests[index]
    url = urlsplit(request.uri)
    prefix = urlsplit(cassettes.BASE_URLS[provider]).path
    assert url.path.startswith(prefix)
    body = request.body
    return {
        "method": request.method,
        "path": url.path[len(prefix) :],
        "query": dict(parse_qsl(url.query)),
        "json": json.loads(body) if body else None,
        "headers": {k.lower(): v for k, v in request.headers.items()},
    }


def _query_strings(query: Any) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (query or {}).items()}


def _assert_user_output(result: cassettes.StepResult) -> None:
    step, output = result.step, result.output
    if "error" in step:
        assert result.error is not None and result.error.code == step["error"], output
        return
    assert cassettes.contains(output, cassettes.expected(step, result.context)), output
    spec = _spec(step["node"])
    if spec["kind"] == "create":
        assert output["id"]
        if step.get("wait", "none") != "none":
            assert output["state"] == "completed"
            assert str(output["assets"][spec["family"]]).startswith("http")
    if spec["kind"] == "list":
        lists = [v for v in output.values() if isinstance(v, list)]
        assert lists and all(lists), f"{step['node']}: expected a non-empty list, got {output}"
    if step.get("download"):
        path = Path(output["files"][spec.get("family", "video")])
        data = path.read_bytes()
        assert len(data) > 1000
        if path.suffix == ".mp4":
            assert data[4:8] == b"ftyp"  # an MP4 a player opens


def _assert_mapped_request_was_recorded(result: cassettes.StepResult, cassette: Any) -> None:
    step = result.step
    provider = step.get("provider", "luma")
    mapped = prepare(step["node"], step["params"], result.context, provider=provider).request
    if mapped is None:
        return
    assert result.interactions, f"{step['node']}: no recorded request was played"
    sent = _recorded_request(cassette, result.interactions[0], provider)
    assert (sent["method"], sent["path"]) == (mapped.method, mapped.path)
    assert sent["json"] == mapped.json
    paging = _spec(step["node"])["providers"][provider].get("paging")
    if paging and result.prepared is not None and result.prepared.params.get(paging["when"]):
        # Return All sends its own limit/offset per page instead of the mapped query.
        assert set(sent["query"]) == {"limit", "offset"}
    else:
        assert sent["query"] == _query_strings(mapped.query)
    for name, value in (mapped.headers or {}).items():
        assert sent["headers"][name.lower()] == value


@pytest.mark.parametrize(
    ("node_id", "scenario"), _replayable(), ids=[f"{n}/{s}" for n, s in _replayable()]
)
def test_scenario_replays_from_its_cassette(node_id: str, scenario: str, tmp_path: Path) -> None:
    path = cassettes.cassette_path(node_id, scenario)
    assert path.is_file(), (
        f"missing {path}; record with: python tests/record_cassettes.py {node_id}"
    )
    with cassettes.make_vcr(record=False).use_cassette(str(path)) as cassette:
        results = asyncio.run(
            cassettes.play(
                SCENARIOS[node_id][scenario], cassette=cassette, download_dir=str(tmp_path)
            )
        )
        assert cassette.all_played, "the replay sent fewer requests than were recorded"
    assert any(r.step["node"] == node_id for r in results)
    for result in results:
        _assert_user_output(result)
        _assert_mapped_request_was_recorded(result, cassette)
