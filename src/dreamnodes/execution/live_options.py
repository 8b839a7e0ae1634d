"""Options for a host's dropdowns: static from the schema, or live from another node.

A node file's ``dynamic_options`` says which fields load their options from a list node
(``concepts`` from ``list_concepts``); the schema's own options (``oneOf`` labels, or the
``examples`` of an array's items) stay the fallback when the live list cannot be had.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dreamnodes.errors import DreamError
from dreamnodes.preparation.inputs import option_labels

if TYPE_CHECKING:
    from dreamnodes.execution.runner import Runner


def static_options(runner: Runner, node_id: str, field: str) -> list[dict[str, Any]]:
    """The options the schema itself lists for a field, as ``{"value", "title"}`` pairs."""
    pkg = runner.package
    node = pkg.node(node_id)
    labelled = option_labels(node.input_schema, pkg.registry)
    if field in labelled:
        return [{"value": value, "title": title} for value, title in labelled[field]]
    prop = node.input_schema.get("properties", {}).get(field)
    if prop is None:
        raise DreamError("invalid_input", f"field: {node_id} has no field {field!r}", field="field")
    examples = prop.get("items", {}).get("examples", []) or prop.get("examples", [])
    return [{"value": value, "title": _title(value)} for value in examples]


def _title(value: Any) -> str:
    return str(value).replace("_", " ").title() if isinstance(value, str) else str(value)


async def live_options(runner: Runner, node_id: str, field: str) -> dict[str, Any]:
    """The field's options: ``{"source": "live"|"static", "options": [...]}``.

    Live when the node declares dynamic options for the field and the list node answers;
    otherwise the schema's static list, with the reason the live list could not be had.
    """
    node = runner.package.node(node_id)
    dynamic = node.spec.get("dynamic_options", {}).get(field)
    if dynamic is None:
        return {"source": "static", "options": static_options(runner, node_id, field)}
    try:
        listed = await runner.run(dynamic["node"], {})
    except DreamError as error:
        return {
            "source": "static",
            "options": static_options(runner, node_id, field),
            "live_error": error.to_dict(),
        }
    values = listed.get(dynamic["path"], [])
    return {"source": "live", "options": [{"value": v, "title": _title(v)} for v in values]}
