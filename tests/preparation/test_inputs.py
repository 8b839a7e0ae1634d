"""Inputs: labels and strings from upstream become values; bad input is explained to the user."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from referencing import Registry, Resource

from dreamnodes.errors import DreamError
from dreamnodes.preparation.inputs import normalise, option_labels, with_defaults
from dreamnodes.preparation.validation import check_rules, validate

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
LOADED = [json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("*.json"))]
REGISTRY: Registry[Any] = Registry().with_resources(
    [(s["$id"], Resource.from_contents(s)) for s in LOADED]
)
DREAM = json.loads((SCHEMAS / "dream_machine.input.json").read_text())

# A test-only schema for what dream_machine does not have: numbers, nested objects, arrays of
# objects, a required text field.
LISTING: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://dreamnodes.invalid/schemas/test_listing.input.json",
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
        "weight": {"type": "number", "exclusiveMinimum": 0},
        "image_refs": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "url": {"$ref": "defs.json#/$defs/public_url"},
                    "weight": {"type": "number", "maximum": 1},
                    "ratio": {"$ref": "defs.json#/$defs/aspect_ratio"},
                },
            },
        },
    },
}

RULES: list[dict[str, Any]] = [
    {
        "when": {"loop": True, "end_image_url": {"defined": True}},
        "field": "loop",
        "message": "Loop is not supported with an end image",
    },
    {
        "when": {"model": "ray-1-6", "concepts": {"longer_than": 0}},
        "field": "concepts",
        "message": "concepts are not available with Ray 1.6",
    },
    {
        "when": {
            "prompt": {"defined": False},
            "start_image_url": {"defined": False},
            "end_image_url": {"defined": False},
        },
        "field": "prompt",
        "message": "a prompt or an image is required",
    },
]


def invalid(params: dict[str, Any], schema: dict[str, Any] = DREAM) -> DreamError:
    with pytest.raises(DreamError) as caught:
        validate(params, schema, REGISTRY)
    assert caught.value.code == "invalid_input"
    return caught.value


# ---------------------------------------------------------------- normalise


@pytest.mark.parametrize(
    ("field", "given", "expected"),
    [
        ("model", "Ray 2 (best)", "ray-2"),
        ("model", "  ray 2 flash ", "ray-flash-2"),
        ("model", "ray-1-6", "ray-1-6"),
        ("aspect_ratio", "16:9 (landscape)", "16:9"),
        ("aspect_ratio", "21:9 (CINEMA)", "21:9"),
        ("duration", "9 seconds", "9s"),
        ("resolution", "4K", "4k"),
        ("loop", "Yes", True),
        ("loop", "no", False),
        ("loop", "TRUE", True),
        ("loop", "false", False),
        ("loop", "on", True),
        ("loop", "Off", False),
        ("loop", "1", True),
        ("loop", "0", False),
        ("loop", True, True),
    ],
)
def test_labels_and_strings_become_values(field: str, given: Any, expected: Any) -> None:
    assert normalise({"model": "ray-2", field: given}, DREAM, REGISTRY)[field] == expected


def test_values_that_do_not_convert_are_left_for_validation() -> None:
    params = {"model": "Ray 3", "loop": "maybe", "aspect_ratio": 5}
    assert normalise(params, DREAM, REGISTRY) == params


def test_numeric_strings_become_numbers_only_when_exactly_a_number() -> None:
    params = {"name": "x", "limit": "20", "weight": "0.5"}
    assert normalise(params, LISTING, REGISTRY) == {"name": "x", "limit": 20, "weight": 0.5}
    odd = {"name": "20", "limit": "20 items", "weight": "1e400x"}
    assert normalise(odd, LISTING, REGISTRY) == odd  # name is text: kept as "20"


def test_empty_or_null_optional_fields_are_dropped_required_ones_kept() -> None:
    params = {"model": "", "prompt": "", "end_image_url": None, "loop": ""}
    assert normalise(params, DREAM, REGISTRY) == {"model": ""}
    assert invalid(normalise(params, DREAM, REGISTRY)).message == (
        'model: "" is not allowed; choose one of'
        " Ray 2 (best) = ray-2, Ray 2 Flash = ray-flash-2, Ray 1.6 = ray-1-6"
    )


def test_nested_refs_in_array_items_are_normalised() -> None:
    params = {
        "name": "x",
        "image_refs": [{"url": "https://e.com/a.png", "weight": "0.25", "ratio": "1:1 (square)"}],
    }
    assert normalise(params, LISTING, REGISTRY)["image_refs"] == [
        {"url": "https://e.com/a.png", "weight": 0.25, "ratio": "1:1"}
    ]


def test_normalise_does_not_fill_defaults_or_modify_its_input() -> None:
    params = {"model": "Ray 2 (best)", "prompt": "A tiger", "loop": "Yes"}
    before = dict(params)
    out = normalise(params, DREAM, REGISTRY)
    assert out == {"model": "ray-2", "prompt": "A tiger", "loop": True}
    assert params == before
    assert out is not params


def test_unknown_fields_pass_through_normalise_for_validation_to_name() -> None:
    assert normalise({"model": "ray-2", "colour": ""}, DREAM, REGISTRY) == {
        "model": "ray-2",
        "colour": "",
    }


def test_with_defaults_fills_absent_top_level_fields_only() -> None:
    assert with_defaults({"prompt": "A tiger", "duration": "9s"}, DREAM, REGISTRY) == {
        "prompt": "A tiger",
        "duration": "9s",
        "model": "ray-2",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "loop": False,
        "wait": "none",
        "timeout": 900,
    }
    assert with_defaults({"name": "x"}, LISTING, REGISTRY) == {"name": "x", "limit": 10}


def test_option_labels_lists_values_and_titles_in_order() -> None:
    labels = option_labels(DREAM, REGISTRY)
    assert sorted(labels) == ["aspect_ratio", "duration", "loop", "model", "resolution", "wait"]
    assert labels["model"] == [
        ("ray-2", "Ray 2 (best)"),
        ("ray-flash-2", "Ray 2 Flash"),
        ("ray-1-6", "Ray 1.6"),
    ]
    assert labels["loop"] == [(False, "No"), (True, "Yes")]
    assert option_labels(LISTING, REGISTRY) == {}


# ---------------------------------------------------------------- validate


def test_the_schema_examples_are_valid() -> None:
    for example in DREAM["examples"]:
        validate(example, DREAM, REGISTRY)


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        (
            {"aspect_ratio": "5:4"},
            "aspect_ratio",
            'aspect_ratio: "5:4" is not allowed; choose one of 16:9 (landscape), 9:16 (portrait),'
            " 1:1 (square), 4:3, 3:4, 21:9 (cinema), 9:21",
        ),
        ({"duration": 5}, "duration", "duration: expected text, got the number 5"),
        (
            {"loop": "maybe"},
            "loop",
            'loop: expected true or false, got the text "maybe"',
        ),
        ({"prompt": "ab"}, "prompt", "prompt: too short (2 characters, minimum 3)"),
        ({"prompt": "x" * 5001}, "prompt", "prompt: too long (5001 characters, maximum 5000)"),
        ({"prompt": 7}, "prompt", "prompt: expected text, got the number 7"),
        (
            {"start_image_url": "ftp://x"},
            "start_image_url",
            'start_image_url: "ftp://x" is not a public http(s) URL',
        ),
        (
            {"end_image_url": "https://exa mple.com/a.jpg"},
            "end_image_url",
            'end_image_url: "https://exa mple.com/a.jpg" is not a public http(s) URL',
        ),
        (
            {"callback_url": "/relative/path"},
            "callback_url",
            'callback_url: "/relative/path" is not a public http(s) URL',
        ),
        (
            {"concepts": ["Z!"]},
            "concepts[0]",
            'concepts[0]: "Z!" is not a key of 2 to 64 lower-case letters, digits and'
            " underscores (such as dolly_zoom)",
        ),
        (
            {"concepts": ["a1", "b2", "c3", "d4", "e5", "f6"]},
            "concepts",
            "concepts: too many items (6, maximum 5)",
        ),
        ({"concepts": ["ab", "ab"]}, "concepts", "concepts: each item may appear only once"),
        (
            {"colour": "red"},
            "colour",
            "colour: unknown field; this node takes: model, prompt, aspect_ratio, duration,"
            " resolution, loop, start_image_url, end_image_url, concepts, callback_url,"
            " wait, timeout",
        ),
    ],
)
def test_bad_input_names_field_value_and_what_is_allowed(
    params: dict[str, Any], field: str, message: str
) -> None:
    error = invalid({"model": "ray-2", **params})
    assert error.field == field
    assert error.message == message
    assert str(error) == f"invalid_input: {message}"


def test_a_missing_required_field_is_named() -> None:
    error = invalid({"prompt": "A tiger"})
    assert (error.field, error.message) == ("model", "model: is required")


def test_loop_must_be_a_boolean_not_a_label_like_number() -> None:
    assert invalid({"model": "ray-2", "loop": 1}).message == (
        "loop: expected true or false, got the number 1"
    )


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"limit": 500}, "limit", "limit: 500 is above the maximum 100"),
        ({"limit": 0}, "limit", "limit: 0 is below the minimum 1"),
        ({"limit": 2.5}, "limit", "limit: expected a whole number, got the number 2.5"),
        ({"limit": "20 items"}, "limit", 'limit: expected a whole number, got the text "20 items"'),
        ({"weight": 0}, "weight", "weight: 0 must be above 0"),
        (
            {
                "image_refs": [
                    {"url": "https://e.com/a.png"},
                    {"url": "https://e.com/b", "weight": 2},
                ]
            },
            "image_refs[1].weight",
            "image_refs[1].weight: 2 is above the maximum 1",
        ),
        (
            {"image_refs": [{"url": "data:image/png;base64,AAAA"}]},
            "image_refs[0].url",
            'image_refs[0].url: "data:image/png;base64,AAAA" is not a public http(s) URL',
        ),
        (
            {"image_refs": [{"ratio": "5:4"}]},
            "image_refs[0].ratio",
            'image_refs[0].ratio: "5:4" is not allowed; choose one of 16:9 (landscape),'
            " 9:16 (portrait), 1:1 (square), 4:3, 3:4, 21:9 (cinema), 9:21",
        ),
        (
            {"image_refs": [{"size": 3}]},
            "image_refs[0].size",
            "image_refs[0].size: unknown field; image_refs[0] takes: url, weight, ratio",
        ),
    ],
)
def test_numbers_and_nested_fields_are_explained(
    params: dict[str, Any], field: str, message: str
) -> None:
    error = invalid({"name": "x", **params}, LISTING)
    assert (error.field, error.message) == (field, message)


def test_long_values_are_shortened_in_messages() -> None:
    error = invalid({"model": "ray-2", "start_image_url": "ftp://" + "x" * 200})
    assert error.message == f'start_image_url: "ftp://{"x" * 51}..." is not a public http(s) URL'


def test_normalised_labels_then_validate_passes() -> None:
    params = {
        "model": "Ray 2 Flash",
        "prompt": "A tiger walking in snow",
        "aspect_ratio": "9:16 (portrait)",
        "loop": "No",
        "start_image_url": "https://example.com/start.jpg",
        "end_image_url": "",
    }
    validate(normalise(params, DREAM, REGISTRY), DREAM, REGISTRY)


# ---------------------------------------------------------------- rules


def test_rules_pass_for_a_plain_request() -> None:
    check_rules({"model": "ray-2", "prompt": "A tiger", "loop": True}, RULES)
    check_rules({"model": "ray-2", "start_image_url": "https://e.com/a.jpg"}, RULES)
    check_rules({"model": "ray-2", "prompt": "A tiger", "concepts": ["dolly_zoom"]}, RULES)


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        (
            {"model": "ray-2", "prompt": "x", "loop": True, "end_image_url": "https://e.com/a"},
            "loop",
            "loop: Loop is not supported with an end image",
        ),
        (
            {"model": "ray-1-6", "prompt": "x", "concepts": ["dolly_zoom"]},
            "concepts",
            "concepts: concepts are not available with Ray 1.6",
        ),
        ({"model": "ray-2"}, "prompt", "prompt: a prompt or an image is required"),
    ],
)
def test_a_rule_that_holds_is_an_invalid_input(
    params: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(DreamError) as caught:
        check_rules(params, RULES)
    assert (caught.value.code, caught.value.field, caught.value.message) == (
        "invalid_input",
        field,
        message,
    )


def test_a_rule_with_an_unknown_test_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown condition 'like'"):
        check_rules(
            {"model": "ray-2"},
            [{"when": {"model": {"like": "ray"}}, "field": "model", "message": "x"}],
        )


# ---------------------------------------------------------------- speed


def test_normalise_validate_and_rules_stay_fast() -> None:
    params = {
        "model": "Ray 2 (best)",
        "prompt": "A tiger walking in snow",
        "aspect_ratio": "16:9 (landscape)",
        "duration": "5s",
        "loop": "Yes",
        "start_image_url": "https://example.com/a.jpg",
    }
    runs = 300
    started = time.perf_counter()
    for _ in range(runs):
        ready = normalise(params, DREAM, REGISTRY)
        validate(ready, DREAM, REGISTRY)
        check_rules(ready, RULES)
    per_run = (time.perf_counter() - started) / runs
    assert per_run < 0.0005  # the budget is 0.2 ms; leave room for slow CI machines


# ---------------------------------------------------------------- hostile text


def _patterns(value: Any, where: str = "") -> list[tuple[str, str]]:
    """Every `pattern` in a schema file, with where it is."""
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        if isinstance(value.get("pattern"), str):
            found.append((where, value["pattern"]))
        for key, item in value.items():
            found += _patterns(item, f"{where}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _patterns(item, f"{where}/{index}")
    return found


# A valid value for each pattern anchored at the end: new ones must be added here.
ANCHORED_SAMPLES = {
    "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$(?!\\n)": "7ca76429-99d1-46ab-bb2e-84baa4acdb04",
    "^[A-Za-z0-9](?:[A-Za-z0-9 ._-]{0,198}[A-Za-z0-9._-])?$(?!\\n)": "my tiger.mp4",
    "^[0-9a-f]{64}$(?!\\n)": "ab" * 32,
    "^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$(?!\\n)": "a1b2-c3_d4",  # an Agents file id
    "^\\d+(\\.\\d+)?(s|%)?$(?!\\n)": "2.5s",  # a keyframe position
    "^[a-z0-9_]{2,64}$(?!\\n)": "dolly_zoom",
    "^[a-z][a-z0-9_]*$(?!\\n)": "dream_machine",
    "^[a-z0-9_.]+\\.json$(?!\\n)": "dream_machine.input.json",
    "^[A-Za-z_][A-Za-z0-9_-]*(\\.[A-Za-z_][A-Za-z0-9_-]*)*$(?!\\n)": "keyframes.frame0",
    "^/[A-Za-z0-9_./{}-]*$(?!\\n)": "/generations/{generation_id}",
}


def test_every_anchored_pattern_refuses_a_trailing_line_break_in_both_validators() -> None:
    import fastjsonschema
    from jsonschema import Draft202012Validator

    anchored = {
        pattern
        for schema in LOADED
        for _, pattern in _patterns(schema)
        if "$" in pattern.replace("\\$", "")
    }
    assert anchored == set(ANCHORED_SAMPLES)
    for pattern, sample in ANCHORED_SAMPLES.items():
        schema = {"type": "string", "pattern": pattern}
        slow = Draft202012Validator(schema)
        fast = fastjsonschema.compile(schema)
        assert slow.is_valid(sample), pattern
        fast(sample)
        for bad in (sample + "\n", sample + "\r\n", "\n" + sample, sample + "\nx"):
            assert not slow.is_valid(bad), (pattern, bad)
            with pytest.raises(fastjsonschema.JsonSchemaException):
                fast(bad)


@pytest.mark.parametrize(
    ("node", "params", "field"),
    [
        ("get_generation", {"generation_id": "abc\n"}, "generation_id"),
        ("delete_generation", {"generation_id": "abc\n"}, "generation_id"),
        ("upscale_video", {"generation_id": "abc\n"}, "generation_id"),
        ("download_asset", {"url": "https://e.com/a.mp4", "filename": "a.mp4\n"}, "filename"),
        ("dream_machine", {"model": "ray-2", "concepts": ["dolly_zoom\n"]}, "concepts[0]"),
    ],
)
def test_an_id_or_file_name_with_a_trailing_line_break_is_refused(
    node: str, params: dict[str, Any], field: str
) -> None:
    from dreamnodes.preparation.prepare import prepare

    with pytest.raises(DreamError) as caught:
        prepare(node, {"prompt": "a tiger", **params} if node == "dream_machine" else params)
    error = caught.value
    assert (error.code, error.field) == ("invalid_input", field)
    assert "\\n" in error.message and "line break" in error.message
    assert "(?!" not in error.message  # the pattern is shown as a reader knows it


PROMPT_NODES = [
    ("dream_machine", {"model": "ray-2"}, "prompt"),
    ("generate_image", {"model": "photon-1"}, "prompt"),
    ("extend_video", {"model": "ray-2", "generation_id": "g1"}, "prompt"),
    ("add_audio", {"generation_id": "g1"}, "prompt"),
    ("add_audio", {"generation_id": "g1", "prompt": "rain"}, "negative_prompt"),
    (
        "modify_video",
        {"video_url": "https://e.com/a.mp4", "mode": "adhere_1", "model": "ray-2"},
        "prompt",
    ),
    (
        "reframe_video",
        {"media_url": "https://e.com/a.mp4", "aspect_ratio": "9:16", "model": "ray-2"},
        "prompt",
    ),
    (
        "reframe_image",
        {"media_url": "https://e.com/a.jpg", "aspect_ratio": "1:1", "model": "photon-1"},
        "prompt",
    ),
]


@pytest.mark.parametrize("blank", ["   ", " \n\t ", "\u3000\u3000\u3000"])
@pytest.mark.parametrize(("node", "params", "field"), PROMPT_NODES)
def test_a_blank_prompt_is_refused_naming_the_field(
    node: str, params: dict[str, Any], field: str, blank: str
) -> None:
    from dreamnodes.preparation.prepare import prepare

    with pytest.raises(DreamError) as caught:
        prepare(node, {**params, field: blank})
    error = caught.value
    assert (error.code, error.field) == ("invalid_input", field)
    assert error.message == f"{field}: is blank (only spaces or line breaks)"


def test_an_empty_optional_prompt_still_means_not_set() -> None:
    from dreamnodes.preparation.prepare import prepare

    prepared = prepare(
        "dream_machine",
        {"model": "ray-2", "prompt": "", "start_image_url": "https://e.com/a.jpg"},
    )
    assert "prompt" not in prepared.params


@pytest.mark.parametrize("node", ["get_credits", "list_camera_motions"])
def test_a_node_without_fields_says_so(node: str) -> None:
    from dreamnodes.preparation.prepare import prepare

    with pytest.raises(DreamError) as caught:
        prepare(node, {"colour": "red"})
    assert caught.value.message == "colour: unknown field; this node takes no fields"
    assert caught.value.field == "colour"
