"""Estimated prices, from the `price` declared per provider in a node file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from dreamnodes.catalog.conditions import Predicate, compile_when


def estimate_usd(price: Mapping[str, Any], params: Mapping[str, Any]) -> float | None:
    """US dollars for one run with these inputs (defaults filled in), or None if unpriced.

    ``base`` (or ``table[params[by]]``) times each ``factors[field][value]``, times the seconds
    of ``per_second_of`` (a duration such as "5s"), plus ``per_item.usd`` for each item of the
    list ``per_item.of`` beyond the first ``per_item.free``. The first of ``cases`` whose
    ``when`` holds replaces the declaration's own keys with its own. Booleans look up their
    factors as "true" / "false".
    """
    for case in price.get("cases", ()):
        if _when(json.dumps(case["when"], sort_keys=True))(params):
            price = {**price, **{k: v for k, v in case.items() if k != "when"}}
            break
    if "by" in price:
        amount = price["table"].get(_key(params.get(price["by"])))
        if amount is None:
            return None
    else:
        amount = price.get("base")
        if amount is None:
            return None
    usd = float(amount)
    for field, table in price.get("factors", {}).items():
        usd *= float(table.get(_key(params.get(field)), 1.0))
    per_second = price.get("per_second_of")
    if per_second:
        usd *= _seconds(params.get(per_second, "5s"))
    per_item = price.get("per_item")
    if per_item:
        items = params.get(per_item["of"])
        count = len(items) if isinstance(items, list) else 0
        usd += float(per_item["usd"]) * max(0, count - int(per_item.get("free", 0)))
    return round(usd, 4)


def _key(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


@lru_cache(maxsize=256)
def _when(when: str) -> Predicate:
    return compile_when(json.loads(when))


def _seconds(duration: Any) -> float:
    text = str(duration).strip().lower().removesuffix("s")
    try:
        return float(text)
    except ValueError:
        return 5.0
