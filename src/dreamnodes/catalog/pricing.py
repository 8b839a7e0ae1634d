"""Estimated prices, from the `price` declared per provider in a node file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def estimate_usd(price: Mapping[str, Any], params: Mapping[str, Any]) -> float | None:
    """US dollars for one run with these inputs (defaults filled in), or None if unpriced.

    ``base`` (or ``table[params[by]]``) times each ``factors[field][value]``, times the seconds
    of ``per_second_of`` (a duration such as "5s").
    """
    if "by" in price:
        amount = price["table"].get(params.get(price["by"]))
        if amount is None:
            return None
    else:
        amount = price.get("base")
        if amount is None:
            return None
    usd = float(amount)
    for field, table in price.get("factors", {}).items():
        usd *= float(table.get(params.get(field), 1.0))
    per_second = price.get("per_second_of")
    if per_second:
        usd *= _seconds(params.get(per_second, "5s"))
    return round(usd, 4)


def _seconds(duration: Any) -> float:
    text = str(duration).strip().lower().removesuffix("s")
    try:
        return float(text)
    except ValueError:
        return 5.0
