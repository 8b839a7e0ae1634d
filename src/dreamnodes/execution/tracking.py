"""Holding the running limit for generations nobody waits for.

A create that returns at once (`wait: none`) still starts a generation that runs for minutes
and counts against the account's running cap. Its scheduler ticket is handed to a `Tracker`,
which looks at the generations it holds every few seconds (one list call tells the state of
many; a Get Generation for those the newest page does not show) and releases each ticket when
its generation has ended. A loop without `--wait` so keeps within the cap instead of hitting 429.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from dreamnodes.api.answers import TERMINAL
from dreamnodes.api.limiter import Slot
from dreamnodes.catalog.requests import ApiRequest
from dreamnodes.errors import DreamError

if TYPE_CHECKING:
    from dreamnodes.execution.runner import Runner

LIST_SIZE = 100
# How often the generations of creates nobody waits for are looked at (the running cap).
TRACK_EVERY = 5.0

ListStates = Callable[[], Awaitable[Mapping[str, str]]]
GetState = Callable[[str], Awaitable[str | None]]


class Tracker:
    """Releases held tickets as their generations end; one per Runner."""

    def __init__(
        self,
        get_state: GetState,
        list_states: ListStates | None,
        every: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._get_state = get_state
        self._list_states = list_states
        self._every = every
        self._sleep = sleep
        self._held: dict[str, Slot] = {}
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, generation_id: str, ticket: Slot) -> None:
        """Keep `ticket` until `generation_id` has completed or failed."""
        self._held[generation_id] = ticket
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="dreamnodes-tracker")

    async def aclose(self) -> None:
        """Stop watching; tickets still held are released (this runner stops creating)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for ticket in self._held.values():
            ticket.release()
        self._held.clear()

    async def _watch(self) -> None:
        while self._held:
            await self._sleep(self._every)
            with contextlib.suppress(DreamError):
                await self._look()

    async def _look(self) -> None:
        states: Mapping[str, str] = {}
        if self._list_states is not None and len(self._held) > 1:
            states = await self._list_states()
        for generation_id in list(self._held):
            state = states.get(generation_id)
            if state is None:
                try:
                    state = await self._get_state(generation_id)
                except DreamError as error:
                    if error.code != "not_found":
                        continue
                    state = "failed"  # gone (deleted): it runs no more
            if state in TERMINAL:
                self._held.pop(generation_id).release()


def states_of(listing: Any) -> dict[str, str]:
    """`{id: state}` from a Luma generation list answer."""
    items = listing.get("generations") if isinstance(listing, Mapping) else listing
    out: dict[str, str] = {}
    for item in items if isinstance(items, list) else ():
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            out[item["id"]] = str(item.get("state"))
    return out


def tracker_for(runner: Runner) -> Tracker:
    """A runner's tracker: Luma lists many generations in one call; others are got one by one."""

    async def state_of(generation_id: str) -> str | None:
        state = (await runner.get(generation_id)).get("state")
        return state if isinstance(state, str) else None

    async def listed_states() -> dict[str, str]:
        request = ApiRequest("GET", "/generations", query={"limit": LIST_SIZE, "offset": 0})
        return states_of((await runner.client.send_once(request)).json)

    lists = runner.provider == "luma"
    every = TRACK_EVERY / runner.poll_scale
    return Tracker(state_of, listed_states if lists else None, every, runner.sleep)
