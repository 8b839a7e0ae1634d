"""Get Many with Return All: a list node's pages read one after another, up to its cap."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dreamnodes.api import answers as results
from dreamnodes.catalog.requests import ApiRequest, ApiResponse

if TYPE_CHECKING:
    from dreamnodes.api.client import ApiClient
    from dreamnodes.preparation.prepare import Prepared


async def all_pages(
    client: ApiClient, prepared: Prepared, paging: Mapping[str, Any]
) -> dict[str, Any]:
    assert prepared.request is not None
    cap = int(paging["cap"])
    limit = int(prepared.params.get("limit", 100))
    offset = int(prepared.params.get("offset", 0))
    items: list[Any] = []
    more = True
    while more and len(items) < cap:
        query = {"limit": min(limit, cap - len(items)), "offset": offset}
        page_req = ApiRequest(
            method=prepared.request.method, path=prepared.request.path, query=query
        )
        response: ApiResponse = await client.send(page_req)
        page = results.read(prepared.provider.response, response, page_req, prepared.params)
        batch = page[paging["items"]]
        items.extend(batch)
        offset += len(batch)
        more = bool(page[paging["has_more"]]) and bool(batch)
    return {
        paging["items"]: items,
        "count": len(items),
        "has_more": more,
        "limit": None,
        "offset": None,
    }
