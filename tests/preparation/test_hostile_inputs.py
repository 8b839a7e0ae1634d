"""Input no later stage can carry: lone surrogates, absurd nesting. Refused up front, by name.

Through the Python API (`prepare`, `estimate`) and the command line (dry run, and a real run
against the sandbox with the run log on): invalid_input, exit 2, one JSON error, a record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dreamnodes.cli import main
from dreamnodes.errors import DreamError
from dreamnodes.preparation.prepare import estimate, prepare
from dreamnodes.preparation.templates import render
from dreamnodes.preparation.usable import MAX_DEPTH, check_usable


def nested(levels: int, leaf: Any = "x", key: str | None = "x") -> Any:
    value = leaf
    for _ in range(levels):
        value = {key: value} if key is not None else [value]
    return value


DEEP = nested(600)
OK = {"model": "ray-2", "prompt": "a tiger in snow"}

# (params, context, the field named, words in the message)
CASES: list[tuple[dict[str, Any], dict[str, Any] | None, str, str]] = [
    ({**OK, "prompt": "a \ud800 tiger"}, None, "prompt", "\\ud800"),
    ({**OK, "prompt": "a tiger \udfff"}, None, "prompt", "\\udfff"),
    ({**OK, "concepts": ["zoom_in", "a\ud83d"]}, None, "concepts[1]", "\\ud83d"),
    ({**OK, "prompt\udc00": "x"}, None, "params", "a key contains \\udc00"),
    ({**OK, "concepts": nested(600, key=None)}, None, "concepts", "more than 100 levels"),
    (OK, {"trigger": {"p": "\ud800"}}, "context", "trigger.p: contains \\ud800"),
    (OK, {"trigger": {"k\ud800": 1}}, "context", "trigger: a key contains \\ud800"),
    (OK, {"trigger": DEEP}, "context", "trigger: is nested more than 100 levels deep"),
    ({**OK, "prompt": "{{trigger.x}}"}, {"trigger": DEEP}, "context", "more than 100 levels"),
    ({**OK, "prompt": "{{trigger.p}}"}, {"trigger": {"p": "a\ud800b"}}, "context", "\\ud800"),
]
IDS = [
    "surrogate-prompt",
    "low-surrogate",
    "surrogate-in-list",
    "surrogate-key",
    "deep-params",
    "surrogate-context",
    "surrogate-context-key",
    "deep-context-unused",
    "deep-context-used",
    "surrogate-context-used",
]


@pytest.mark.parametrize(("params", "context", "field", "words"), CASES, ids=IDS)
def test_the_python_api_refuses_with_invalid_input_naming_the_field(
    params: dict[str, Any], context: dict[str, Any] | None, field: str, words: str
) -> None:
    for call in (prepare, estimate):
        with pytest.raises(DreamError) as caught:
            call("dream_machine", params, context)
        error = caught.value
        assert (error.code, error.field) == ("invalid_input", field)
        assert words in error.message
        # What the user sees can be printed and stored.
        json.dumps(error.to_dict(), ensure_ascii=False).encode("utf-8")
        assert len(error.message) < 300


def test_right_at_the_depth_limit_is_fine_one_more_is_not() -> None:
    check_usable({"trigger": nested(MAX_DEPTH - 1)}, "context")
    with pytest.raises(DreamError):
        check_usable({"trigger": nested(MAX_DEPTH)}, "context")


def test_valid_unicode_passes() -> None:
    params = {**OK, "prompt": "a 🐯 in snow, «très» 東京 \u3000 ok"}
    assert prepare("dream_machine", params).params["prompt"] == params["prompt"]
    prepare("dream_machine", {**OK, "prompt": "{{trigger.p}}"}, {"trigger": {"p": "é😀é"}})


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ('{{ trigger.p | default("\\ud800") }}', "the default contains \\ud800"),
        ("{{ trigger.p | default(" + "[" * 5000 + "]" * 5000 + ") }}", "is not a JSON value"),
        ("{{ trigger.p | default(" + "[" * 150 + "]" * 150 + ") }}", "the default is nested"),
        ('{{ trigger["\\udc00"] }}', "the key contains \\udc00"),
    ],
    ids=["surrogate-default", "unparsable-default", "deep-default", "surrogate-key"],
)
def test_a_template_cannot_make_what_the_params_could_not_carry(template: str, words: str) -> None:
    with pytest.raises(DreamError) as caught:
        render({"prompt": template}, {"trigger": {}})
    error = caught.value
    assert (error.code, error.field) == ("template_error", "prompt")
    assert words in error.message
    json.dumps(error.to_dict(), ensure_ascii=False).encode("utf-8")


# --- the command line ---------------------------------------------------------------------------

CLI_CASES = [
    ('{"model": "ray-2", "prompt": "a \\ud800 tiger"}', None, "prompt"),
    ('{"model": "ray-2", "prompt": "a tiger"}', '{"trigger": {"p": "\\ud800"}}', "context"),
    ('{"model": "ray-2", "prompt": "{{trigger.x}}"}', "deep", "context"),
]


@pytest.mark.parametrize("sandbox", [False, True], ids=["dry-run", "sandbox"])
@pytest.mark.parametrize(("params", "context", "field"), CLI_CASES, ids=["prompt", "ctx", "deep"])
def test_the_command_line_exits_2_with_one_json_error_and_records_the_run(
    params: str,
    context: str | None,
    field: str,
    sandbox: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("dreamnodes.sandbox")
    store = tmp_path / "runs.sqlite3"
    monkeypatch.setenv("DREAMNODES_STORE", str(store))
    argv = ["run", "dream_machine", "--params", params]
    if context == "deep":
        (tmp_path / "ctx.json").write_text(json.dumps({"trigger": DEEP}), encoding="utf-8")
        argv += ["--context", f"@{tmp_path / 'ctx.json'}"]
    elif context is not None:
        argv += ["--context", context]
    argv += ["--sandbox"] if sandbox else ["--dry-run"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    error = json.loads(out)["error"]
    assert (error["code"], error["field"]) == ("invalid_input", field)
    assert err.startswith("dreamnodes: invalid_input: ") and err.count("\n") == 1
    assert "internal error" not in out
    if sandbox:  # the failed run is in the run log, like any bad input
        assert main(["runs", "list", "--json"]) == 0
        runs = json.loads(capsys.readouterr().out)
        assert [(r["status"], r["error_code"]) for r in runs] == [("failed", "invalid_input")]
