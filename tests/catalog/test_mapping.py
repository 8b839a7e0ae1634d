"""Declared request mappings and conditions, as node files use them."""

from __future__ import annotations

from typing import Any

import pytest

from dreamnodes.catalog.conditions import compile_when
from dreamnodes.catalog.mapping import RequestPlan
from dreamnodes.preparation.prepare import prepare

EXTEND = {
    "method": "POST",
    "path": "/generations/video",
    "body": [
        {"const": {"generation_type": "video"}},
        {"copy": ["model", "prompt"]},
        {
            "set": "keyframes.frame0",
            "to": {"type": "generation", "id": "$generation_id"},
            "when": {"direction": {"not": "backward"}},
        },
        {
            "set": "keyframes.frame1",
            "to": {"type": "image", "url": "$image_url"},
            "when": {"direction": {"not": "backward"}},
        },
        {
            "set": "keyframes.frame1",
            "to": {"type": "generation", "id": "$generation_id"},
            "when": {"direction": "backward"},
        },
        {"set": "concepts", "each": "concepts", "to": {"key": "$item"}},
    ],
}


def body(params: dict[str, Any], spec: dict[str, Any] = EXTEND) -> Any:
    return RequestPlan.compile(spec, billable=True).build(params).json


def test_optional_parts_drop_out_when_their_field_is_not_given() -> None:
    assert body({"model": "ray-2", "generation_id": "g1", "direction": "forward"}) == {
        "generation_type": "video",
        "model": "ray-2",
        "keyframes": {"frame0": {"type": "generation", "id": "g1"}},
    }


def test_conditions_choose_the_keyframe_slot() -> None:
    out = body(
        {
            "model": "ray-2",
            "generation_id": "g1",
            "direction": "backward",
            "image_url": "https://e.com/a.jpg",
        }
    )
    assert out["keyframes"] == {"frame1": {"type": "generation", "id": "g1"}}


def test_each_maps_every_item() -> None:
    out = body({"model": "ray-2", "concepts": ["dolly_zoom", "orbit_left"]})
    assert out["concepts"] == [{"key": "dolly_zoom"}, {"key": "orbit_left"}]


def test_path_parameters_are_percent_encoded() -> None:
    plan = RequestPlan.compile(
        {"method": "GET", "path": "/generations/{generation_id}"}, billable=False
    )
    assert plan.build({"generation_id": "a/../b c"}).path == "/generations/a%2F..%2Fb%20c"
    assert plan.reads == frozenset({"generation_id"})


def test_a_dollar_dollar_string_is_a_literal() -> None:
    spec = {"method": "POST", "path": "/x", "body": [{"set": "note", "to": "$$price"}]}
    assert body({}, spec) == {"note": "$price"}


@pytest.mark.parametrize(
    ("when", "params", "holds"),
    [
        ({"loop": True}, {"loop": True}, True),
        ({"loop": True}, {}, False),
        ({"end": {"defined": True}}, {"end": "x"}, True),
        ({"end": {"defined": False}}, {"end": "x"}, False),
        ({"model": {"in": ["ray-2", "ray-flash-2"]}}, {"model": "ray-1-6"}, False),
        ({"concepts": {"longer_than": 0}}, {"concepts": []}, False),
        ({"concepts": {"longer_than": 0}}, {"concepts": ["a"]}, True),
        (
            {"model": "ray-1-6", "concepts": {"longer_than": 0}},
            {"model": "ray-2", "concepts": ["a"]},
            False,
        ),
    ],
)
def test_conditions(when: dict[str, Any], params: dict[str, Any], holds: bool) -> None:
    assert compile_when(when)(params) is holds


def test_extend_video_maps_each_keyframe_combination() -> None:
    base = {"generation_id": "g1", "model": "ray-2", "prompt": "The tiger rolls around"}
    forward = prepare("extend_video", {**base, "image_url": "https://e.com/end.jpg"}).request
    backward = prepare(
        "extend_video",
        {**base, "direction": "Backward (lead up to it)", "image_url": "https://e.com/start.jpg"},
    ).request
    between = prepare("extend_video", {**base, "to_generation_id": "g2"}).request
    assert forward is not None and backward is not None and between is not None
    assert forward.json["keyframes"] == {
        "frame0": {"type": "generation", "id": "g1"},
        "frame1": {"type": "image", "url": "https://e.com/end.jpg"},
    }
    assert backward.json["keyframes"] == {
        "frame0": {"type": "image", "url": "https://e.com/start.jpg"},
        "frame1": {"type": "generation", "id": "g1"},
    }
    assert between.json["keyframes"] == {
        "frame0": {"type": "generation", "id": "g1"},
        "frame1": {"type": "generation", "id": "g2"},
    }
