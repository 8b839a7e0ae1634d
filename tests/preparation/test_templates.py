"""The user's {{ }} templates: lookups in the run context, types kept, clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from dreamnodes.errors import DreamError
from dreamnodes.preparation.templates import has_templates, render

CONTEXT: dict[str, Any] = {
    "trigger": {"prompt": "A tiger in snow", "model": "ray-2"},
    "steps": {
        "make_video": {"id": "gen-123", "loop": True, "seconds": 5, "tags": ["a", "b"]},
        "make-image": {"url": "https://example.com/x.jpg", "meta": {"w": 2}, "none": None},
    },
    "item": {
        "prompts": ["first", "second"],
        "odd key": "odd value",
        "literal": "{{trigger.prompt}}",
    },
    "index": 3,
}


def template_error(params: Any, context: dict[str, Any] = CONTEXT) -> DreamError:
    with pytest.raises(DreamError) as caught:
        render(params, context)
    assert caught.value.code == "template_error"
    return caught.value


def test_paths_look_up_context_dicts_and_lists() -> None:
    params = {
        "prompt": "{{trigger.prompt}}",
        "id": "{{ steps.make_video.id }}",
        "first": "{{ item.prompts[0] }}",
        "last": "{{ item.prompts[-1] }}",
        "odd": '{{ item["odd key"] }}',
        "odd_single_quotes": "{{ item['odd key'] }}",
        "hyphen": "{{ steps.make-image.url }}",
        "index": "{{index}}",
    }
    assert render(params, CONTEXT) == {
        "prompt": "A tiger in snow",
        "id": "gen-123",
        "first": "first",
        "last": "second",
        "odd": "odd value",
        "odd_single_quotes": "odd value",
        "hyphen": "https://example.com/x.jpg",
        "index": 3,
    }


def test_a_field_that_is_exactly_one_template_keeps_the_type() -> None:
    params = {
        "loop": "{{ steps.make_video.loop }}",
        "seconds": "  {{steps.make_video.seconds}}  ",
        "tags": "{{ steps.make_video.tags }}",
        "meta": "{{ steps.make-image.meta }}",
        "none": "{{ steps.make-image.none }}",
    }
    assert render(params, CONTEXT) == {
        "loop": True,
        "seconds": 5,
        "tags": ["a", "b"],
        "meta": {"w": 2},
        "none": None,
    }


def test_a_template_inside_text_renders_json_for_non_text() -> None:
    text = (
        "{{trigger.prompt}}, take {{index}}, loop={{steps.make_video.loop}},"
        " tags={{steps.make_video.tags}} meta={{ steps.make-image.meta }}"
        " none={{ steps.make-image.none }}"
    )
    assert render({"prompt": text}, CONTEXT) == {
        "prompt": 'A tiger in snow, take 3, loop=true, tags=["a","b"] meta={"w":2} none=null'
    }


def test_two_templates_with_nothing_between_render_to_text() -> None:
    assert render("{{index}}{{index}}", CONTEXT) == "33"


def test_nested_params_lists_and_non_strings_are_walked_and_kept() -> None:
    params = {
        "image_refs": [{"url": "{{ steps.make-image.url }}", "weight": 0.5}],
        "n": 2,
        "x": None,
    }
    assert render(params, CONTEXT) == {
        "image_refs": [{"url": "https://example.com/x.jpg", "weight": 0.5}],
        "n": 2,
        "x": None,
    }


def test_dict_keys_are_not_templated() -> None:
    assert render({"{{index}}": "{{index}}"}, CONTEXT) == {"{{index}}": 3}


def test_rendered_output_is_never_rendered_again() -> None:
    assert render({"prompt": "{{ item.literal }}"}, CONTEXT) == {"prompt": "{{trigger.prompt}}"}
    assert render({"p": "say {{ item.literal }}"}, CONTEXT) == {"p": "say {{trigger.prompt}}"}


def test_render_does_not_modify_params_or_share_context_values() -> None:
    params = {"tags": "{{ steps.make_video.tags }}"}
    out = render(params, CONTEXT)
    out["tags"].append("c")
    assert params == {"tags": "{{ steps.make_video.tags }}"}
    assert CONTEXT["steps"]["make_video"]["tags"] == ["a", "b"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{{ trigger.duration | default("5s") }}', "5s"),
        ("{{ trigger.duration|default(9) }}", 9),
        ("{{ trigger.loop | default(true) }}", True),
        ("{{ trigger.x | default(null) }}", None),
        ('{{ trigger.refs | default(["a", "b"]) }}', ["a", "b"]),
        ('{{ trigger.opts | default({"a": {"b": "}}"}}) }}', {"a": {"b": "}}"}}),
        ('{{ steps.make-image.none | default("used for null") }}', "used for null"),
        ('{{ missing.deeply.nested | default("x") }}', "x"),
        ('{{ trigger.prompt | default("not used") }}', "A tiger in snow"),
        ('clip {{ trigger.duration | default("5s") }} long', "clip 5s long"),
    ],
)
def test_default_is_a_json_literal_used_when_missing_or_null(template: str, expected: Any) -> None:
    assert render({"f": template}, CONTEXT) == {"f": expected}


def test_default_objects_are_not_shared_between_renders() -> None:
    first = render({"f": "{{ trigger.refs | default([1]) }}"}, CONTEXT)
    first["f"].append(2)
    assert render({"f": "{{ trigger.refs | default([1]) }}"}, CONTEXT) == {"f": [1]}


def test_missing_key_names_the_path_the_field_and_the_keys_that_exist() -> None:
    error = template_error({"prompt": "{{trigger.promt}}"})
    assert error.field == "prompt"
    assert (
        error.message
        == 'prompt: {{trigger.promt}}: "promt" not found in trigger; it has: prompt, model'
    )


def test_missing_key_deeper_in_params_names_the_dotted_field() -> None:
    error = template_error({"image_refs": [{"url": "see {{ steps.make_vid.id }}"}]})
    assert error.field == "image_refs[0].url"
    assert error.message == (
        'image_refs[0].url: {{ steps.make_vid.id }}: "make_vid" not found in steps;'
        " it has: make_video, make-image"
    )


def test_missing_top_level_name_lists_the_context() -> None:
    error = template_error({"p": "{{ trigerr.prompt }}"})
    assert error.message == (
        'p: {{ trigerr.prompt }}: "trigerr" not found in the context;'
        " it has: trigger, steps, item, index"
    )


def test_missing_index_and_lookup_into_text_are_explained() -> None:
    assert template_error({"p": "{{ item.prompts[2] }}"}).message == (
        "p: {{ item.prompts[2] }}: index 2 not found in item.prompts; it has 2 items"
    )
    assert template_error({"p": "{{ trigger.prompt.text }}"}).message == (
        'p: {{ trigger.prompt.text }}: "text" not found: trigger.prompt is text, not an object'
    )
    assert template_error({"p": "{{ trigger[0] }}"}).message == (
        "p: {{ trigger[0] }}: index 0 not found: trigger is an object, not a list"
    )


def test_null_without_default_is_kept_not_an_error() -> None:
    assert render({"x": "{{ steps.make-image.none }}"}, CONTEXT) == {"x": None}


def test_python_attributes_are_not_reachable() -> None:
    context = {"trigger": {"prompt": "x"}}
    error = template_error({"p": "{{ trigger.prompt.upper }}"}, context)
    assert '"upper" not found' in error.message
    error = template_error({"p": "{{ trigger.__class__ }}"}, context)
    assert '"__class__" not found in trigger; it has: prompt' in error.message


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ trigger.prompt", '"{{ trigger.prompt": the template is not closed with "}}"'),
        ("{{ }}", "{{ }}: the template is empty; write a path such as trigger.prompt"),
        ("{{ a..b }}", "{{ a..b }}: a name is missing after \".\" in 'a..b'"),
        (
            "{{ a | upper }}",
            '{{ a | upper }}: unknown filter "upper"; the only filter is default(...)',
        ),
        (
            "{{ a | default('x') }}",
            "{{ a | default('x') }}: the default \"'x'\" is not a JSON value;"
            ' use "text", a number, true, false, null, [...] or {...}',
        ),
        (
            "{{ a | default }}",
            '{{ a | default }}: write the default as default(<JSON value>), e.g. default("5s")',
        ),
        (
            "{{ index + 1 }}",
            "{{ index + 1 }}: unexpected '+ 1' after the path;"
            " only lookups and | default(...) are allowed (no calls or arithmetic)",
        ),
        (
            "{{ open('/etc/passwd') }}",
            "{{ open('/etc/passwd') }}: unexpected \"('/etc/passwd')\" after the path;"
            " only lookups and | default(...) are allowed (no calls or arithmetic)",
        ),
        ("{{ 1 }}", "{{ 1 }}: a path must start with a name such as trigger or item"),
        (
            "{{ item[x] }}",
            '{{ item[x] }}: "[" must hold a number or a quoted key, as in item[0] or item["a b"]',
        ),
    ],
)
def test_broken_syntax_is_a_template_error_naming_the_field(template: str, message: str) -> None:
    error = template_error({"settings": {"prompt": template}})
    assert error.field == "settings.prompt"
    assert error.message == f"settings.prompt: {message}"


def test_syntax_errors_are_reported_even_when_the_path_would_exist() -> None:
    error = template_error({"p": "{{ index | upper }}"})
    assert error.field == "p"
    assert (
        str(error) == "template_error: p: {{ index | upper }}:"
        ' unknown filter "upper"; the only filter is default(...)'
    )


def test_text_without_templates_is_returned_unchanged() -> None:
    params = {"p": "plain } text {", "q": "}} odd"}
    assert render(params, CONTEXT) == params


def test_has_templates_finds_templates_in_values_only() -> None:
    assert has_templates({"a": [{"b": "x {{ index }}"}]})
    assert has_templates("{{index}}")
    assert not has_templates({"{{key}}": "plain", "n": 1, "l": ["a", None]})
    assert not has_templates(5)
