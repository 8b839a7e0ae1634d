"""Declared request mappings: a node file's ``request`` turned into the HTTP request to send.

A provider's request in a node file reads::

    "request": {
      "method": "POST",
      "path": "/generations/{generation_id}/audio",
      "body": [
        {"const": {"generation_type": "add_audio"}},
        {"copy": ["prompt", "negative_prompt", "callback_url"]},
        {"set": "keyframes.frame0", "to": {"type": "image", "url": "$start_image_url"}},
        {"set": "concepts", "each": "concepts", "to": {"key": "$item"}},
        {"set": "keyframes.frame1", "to": {...}, "when": {"direction": "backward"}}
      ],
      "query": [...], "headers": [...]
    }

Each rule adds a part only when its condition holds and every input field it reads is given,
so optional fields drop out by themselves. Path parameters are always percent-encoded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from dreamnodes.catalog.conditions import MISSING, Params, compile_value, compile_when, lookup
from dreamnodes.catalog.requests import ApiRequest

Part = Callable[[Params, dict[str, Any]], None]
PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _put(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value


def _compile_rule(rule: Mapping[str, Any]) -> tuple[Part, frozenset[str]]:
    if "const" in rule:
        constant = dict(rule["const"])
        return (lambda p, out: out.update(constant)), frozenset()
    if "copy" in rule:
        names = list(rule["copy"])

        def copy(p: Params, out: dict[str, Any]) -> None:
            for name in names:
                if name in p:
                    out[name] = p[name]

        return copy, frozenset(names)

    target: str = rule["set"]
    applies = compile_when(rule.get("when"))
    produce, refs = compile_value(rule["to"])
    refs = refs | frozenset(rule.get("when", {}))
    if "each" in rule:
        source: str = rule["each"]

        def set_each(p: Params, out: dict[str, Any]) -> None:
            items = lookup(p, source)
            if items is MISSING or not applies(p):
                return
            values = [produce({**p, "item": item}) for item in items]
            _put(out, target, [v for v in values if v is not MISSING])

        return set_each, refs - {"item"} | {source}

    def set_value(p: Params, out: dict[str, Any]) -> None:
        if applies(p):
            value = produce(p)
            if value is not MISSING:
                _put(out, target, value)

    return set_value, refs


def _compile_parts(rules: Sequence[Mapping[str, Any]] | None) -> tuple[Part, frozenset[str]] | None:
    if rules is None:
        return None
    compiled = [_compile_rule(rule) for rule in rules]
    parts = [part for part, _ in compiled]

    def build(p: Params, out: dict[str, Any]) -> None:
        for part in parts:
            part(p, out)

    return build, frozenset().union(*(refs for _, refs in compiled))


@dataclass(frozen=True)
class RequestPlan:
    """A provider's request declaration, compiled once per node."""

    method: str
    path: str
    path_params: tuple[str, ...]
    body: Part | None
    query: Part | None
    headers: Part | None
    billable: bool
    reads: frozenset[str]

    @classmethod
    def compile(cls, spec: Mapping[str, Any], *, billable: bool) -> RequestPlan:
        path: str = spec["path"]
        path_params = tuple(PATH_PARAM.findall(path))
        compiled = {name: _compile_parts(spec.get(name)) for name in ("body", "query", "headers")}
        reads = frozenset(path_params).union(*(c[1] for c in compiled.values() if c is not None))
        return cls(
            method=spec["method"],
            path=path,
            path_params=path_params,
            body=_part(compiled["body"]),
            query=_part(compiled["query"]),
            headers=_part(compiled["headers"]),
            billable=billable,
            reads=reads,
        )

    def build(self, params: Params) -> ApiRequest:
        path = self.path
        for name in self.path_params:
            path = path.replace("{" + name + "}", quote(str(params[name]), safe=""))
        return ApiRequest(
            method=self.method,
            path=path,
            query=_run(self.query, params),
            json=_run(self.body, params),
            headers=_run(self.headers, params),
            billable=self.billable,
        )


def _part(compiled: tuple[Part, frozenset[str]] | None) -> Part | None:
    return None if compiled is None else compiled[0]


def _run(part: Part | None, params: Params) -> dict[str, Any] | None:
    if part is None:
        return None
    out: dict[str, Any] = {}
    part(params, out)
    return out
