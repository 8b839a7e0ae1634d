"""Finding the generation a create made when its answer was lost, so it is never made twice.

Every Luma Generation echoes its request, so the newest recent generation whose `request`
repeats what was sent (volatile fields such as `callback_url`, which carries a per-run token,
left out) is the one the lost answer would have named. Ids handed out (by a lookup or by a
create that answered) are claimed: in the run log for the unit of work being done (see
`claiming`), else in this process, so no generation is ever handed to two units.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dreamnodes.catalog.requests import ApiRequest
from dreamnodes.errors import DreamError

if TYPE_CHECKING:
    from dreamnodes.api.client import ApiClient

CLOCK_SKEW = 120.0  # seconds a generation's created_at may read before our send started
LIST_TRIES = 5  # reading the list is free; sending twice is not
_LIST_DELAYS = (0.5, 1.0, 2.0, 4.0)  # times the policy's first delay
PAGE_SIZE = 50
MAX_PAGES = 20

# Request fields that differ between two sends of the same unit of work.
VOLATILE = frozenset({"callback_url"})

_claimed: set[str] = set()
_claimed_lock = threading.Lock()
Claimer = Callable[[str], bool]
_claimer: ContextVar[Claimer | None] = ContextVar("dreamnodes_claimer", default=None)


@contextmanager
def claiming(claimer: Claimer) -> Iterator[None]:
    """Inside this block (this task and what it awaits), claims go to `claimer`."""
    token = _claimer.set(claimer)
    try:
        yield
    finally:
        _claimer.reset(token)


def claim(generation_id: str) -> bool:
    """Mark an id as taken by the current unit of work; False if another one has it."""
    claimer = _claimer.get()
    if claimer is not None:
        return claimer(generation_id)
    with _claimed_lock:
        if generation_id in _claimed:
            return False
        _claimed.add(generation_id)
        return True


async def luma_find_created(
    client: ApiClient, request: ApiRequest, started_at: float
) -> Mapping[str, Any] | None:
    """The generation this create made before its answer was lost, or None if there is none.

    Pages through the newest generations (a busy loop may have made many since) and stops at
    the first page with a match, or at one that reaches back before the send.
    """
    sent = request.json if isinstance(request.json, Mapping) else {}
    earliest = started_at - CLOCK_SKEW
    for page in range(MAX_PAGES):
        listed = await _list_page(client, page * PAGE_SIZE)
        candidates: list[tuple[float, Mapping[str, Any]]] = []
        older = False
        for generation in listed:
            if not isinstance(generation, Mapping) or not isinstance(generation.get("id"), str):
                continue
            created = _timestamp(generation.get("created_at"))
            if created is None or created < earliest:
                older = older or created is not None
                continue
            if _echoes(generation.get("request"), sent):
                candidates.append((created, generation))
        candidates.sort(key=lambda pair: pair[0], reverse=True)
        for _, generation in candidates:
            if claim(generation["id"]):
                return generation
        if older or len(listed) < PAGE_SIZE:
            break
    return None


async def _list_page(client: ApiClient, offset: int) -> list[Any]:

    query = {"limit": PAGE_SIZE, "offset": offset}
    listing = ApiRequest(method="GET", path="/generations", query=query)
    last: DreamError | None = None
    for tries in range(1, LIST_TRIES + 1):
        try:
            body = (await client.send_once(listing)).json
        except DreamError as error:
            last = error
            if not error.retryable or tries == LIST_TRIES:
                break
            # The run's own pace (a rehearsal's time scale shortens it too).
            await client.sleep(_LIST_DELAYS[tries - 1] * client.policy.first_delay)
            continue
        if isinstance(body, Mapping):
            body = body.get("generations")
        if isinstance(body, list):
            return body
        last = DreamError("provider_error", "the generation list came back in an unknown shape")
        break
    reason = last.message if last else "unknown"
    raise DreamError(
        code="unknown_outcome",
        message="the answer to the create was lost and the recent generations could not be "
        f"listed to check whether it was accepted ({reason}); it was not sent again. "
        "Check with list_generations, or run `dreamnodes runs retry` later: it looks again "
        "before it sends",
        retryable=True,
    )


def _echoes(echo: Any, sent: Any) -> bool:
    """True if `echo` repeats every non-null part of `sent` (extra keys in the echo are fine)."""
    if isinstance(sent, Mapping):
        if not isinstance(echo, Mapping):
            return False
        return all(
            key in echo and _echoes(echo[key], value)
            for key, value in sent.items()
            if value is not None and key not in VOLATILE
        )
    if isinstance(sent, list):
        return (
            isinstance(echo, list)
            and len(echo) == len(sent)
            and all(_echoes(e, s) for e, s in zip(echo, sent, strict=True))
        )
    if isinstance(sent, bool) or isinstance(echo, bool):
        return echo is sent  # true must not match 1
    return bool(echo == sent)


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp()
