"""Conditions and value templates of node files, compiled once into plain functions.

Node files say *when* a part of a request applies and *what* goes into it as data:

- a condition is an object of field tests, all of which must hold::

      {"direction": "backward"}                 the field equals this value
      {"end_image_url": {"defined": true}}      the field is (or is not) given
      {"model": {"in": ["ray-2", "ray-flash-2"]}}
      {"model": {"not": "ray-1-6"}}
      {"concepts": {"longer_than": 0}}          a list or text with more than N items/characters

- a value template is JSON in which a string ``"$field"`` (or ``"$field.key"``) stands for the
  input value; ``"$$text"`` is the literal ``"$text"``; ``{"$fn": name, "value": ..., ...}``
  calls one of the value functions of `dreamnodes.catalog.agents_values` (the part is left out
  when its ``value`` is not given; other arguments not given take the function's default).

json-e was the first choice for this; it re-parses every expression on every call (about
270 us for the Dream Machine body, against 315 us for a whole SDK call), so dreamnodes keeps to
this small, compiled subset instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Params = Mapping[str, Any]
Predicate = Callable[[Params], bool]
Producer = Callable[[Params], Any]


class _Missing:
    """Marks a value template whose input field is not given (the part is left out)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def lookup(params: Params, dotted: str) -> Any:
    """The value at ``a.b.c`` in params, or MISSING."""
    value: Any = params
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return MISSING
        value = value[key]
    return value


def _test(field: str, expected: Any) -> Predicate:
    if not isinstance(expected, Mapping):
        return lambda p: lookup(p, field) == expected
    tests = [_operator(field, op, arg) for op, arg in expected.items()]
    return lambda p: all(t(p) for t in tests)


def _operator(field: str, op: str, arg: Any) -> Predicate:
    if op == "defined":
        want = bool(arg)
        return lambda p: (lookup(p, field) is not MISSING) is want
    if op == "in":
        options = list(arg)
        return lambda p: lookup(p, field) in options
    if op == "not":
        return lambda p: lookup(p, field) != arg
    if op == "longer_than":
        n = int(arg)
        return lambda p: _length(lookup(p, field)) > n
    raise ValueError(f"unknown condition {op!r} on {field!r}")


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple | dict) else 0


def compile_when(when: Mapping[str, Any] | None) -> Predicate:
    """A predicate over params for a condition object (None: always true)."""
    if not when:
        return lambda p: True
    tests = [_test(field, expected) for field, expected in when.items()]
    if len(tests) == 1:
        return tests[0]
    return lambda p: all(t(p) for t in tests)


def compile_value(template: Any) -> tuple[Producer, frozenset[str]]:
    """A producer of the value for params, and the input fields it reads.

    The producer returns MISSING when a field it needs is not given.
    """
    if isinstance(template, str):
        if template.startswith("$$"):
            literal = template[1:]
            return (lambda p: literal), frozenset()
        if template.startswith("$"):
            path = template[1:]
            return (lambda p: lookup(p, path)), frozenset({path.split(".")[0]})
        return (lambda p: template), frozenset()
    if isinstance(template, Mapping) and "$fn" in template:
        return _compile_function(template)
    if isinstance(template, Mapping):
        parts = [(key, *compile_value(value)) for key, value in template.items()]

        def build_object(p: Params) -> Any:
            out: dict[str, Any] = {}
            for key, produce, _ in parts:
                value = produce(p)
                if value is MISSING:
                    return MISSING
                out[key] = value
            return out

        return build_object, frozenset().union(*(refs for _, _, refs in parts))
    if isinstance(template, list):
        items = [compile_value(value) for value in template]

        def build_list(p: Params) -> Any:
            out = [produce(p) for produce, _ in items]
            return MISSING if any(v is MISSING for v in out) else out

        return build_list, frozenset().union(*(refs for _, refs in items))
    return (lambda p: template), frozenset()


def _compile_function(template: Mapping[str, Any]) -> tuple[Producer, frozenset[str]]:
    from dreamnodes.catalog.agents_values import FUNCTIONS

    function = FUNCTIONS[str(template["$fn"])]
    args = [(name, *compile_value(arg)) for name, arg in template.items() if name != "$fn"]

    def call(p: Params) -> Any:
        given = {name: produce(p) for name, produce, _ in args}
        if given.get("value", MISSING) is MISSING:
            return MISSING
        return function(**{k: v for k, v in given.items() if v is not MISSING})

    return call, frozenset().union(*(refs for _, _, refs in args))
