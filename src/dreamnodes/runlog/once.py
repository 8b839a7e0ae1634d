"""The one create of a unit of work: reserved, reconciled when its outcome is unknown, sent
at most once, its generation claimed (see `dreamnodes.runlog.reservations`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dreamnodes.api.lost_creates import claiming, luma_find_created
from dreamnodes.errors import Attempt, DreamError
from dreamnodes.execution.runner import Runner
from dreamnodes.preparation.prepare import Prepared
from dreamnodes.runlog.reservations import Reservations, Unit
from dreamnodes.runlog.store import RunStore

__all__ = ["exactly_once"]


async def exactly_once(
    runner: Runner,
    store: RunStore,
    key: str,
    run_id: str,
    prepared: Prepared,
    download_dir: str | None,
    attempts: list[Attempt],
    *,
    patience: float | None = None,
) -> dict[str, Any]:
    """Reserve the unit, reconcile an unknown outcome, send at most what is owed, record.

    While another live owner holds the unit, wait up to ``patience`` seconds (default: the
    timeout and a minute), then raise `unknown_outcome` (retryable, `held_by` set).
    """
    book = Reservations(store)
    wait_for = prepared.timeout + 60.0 if patience is None else patience
    unit = await book.reserve(key, run_id, patience=wait_for)
    with book.held(unit):
        existing = unit.generation_id
        if existing is None and unit.sent_at is not None:
            existing = await _reconcile(runner, book, unit, prepared)
        if existing is not None:
            store.set_generation(run_id, existing)

        def created(generation_id: str) -> None:
            if not book.created(unit, generation_id):
                raise DreamError(
                    "unknown_outcome",
                    f"the create was answered with generation {generation_id}, which another"
                    " item had already claimed as the answer it lost; this item's own may"
                    " exist too: check with list_generations before retrying",
                    generation_id=generation_id,
                )
            store.set_generation(run_id, generation_id)

        sent = False

        def sending() -> None:
            nonlocal sent
            sent = True
            book.sending(unit)

        try:
            with claiming(lambda generation_id: book.claim(unit, generation_id)):
                return await runner.execute(
                    prepared,
                    download_dir=download_dir,
                    existing_id=existing,
                    on_send=sending,
                    on_created=created,
                    attempts=attempts,
                )
        except DreamError as error:
            if sent and error.generation_id is None and error.code in _REFUSED:
                book.not_accepted(unit)  # the service answered no: nothing is outstanding
            raise


# Final errors of a create that mean the service answered and did not accept it.
_REFUSED = frozenset(
    {"invalid_input", "auth_failed", "insufficient_credits", "not_found", "rate_limited"}
)


async def _reconcile(
    runner: Runner, book: Reservations, unit: Unit, prepared: Prepared
) -> str | None:
    """The generation an earlier send of this unit made, or None if the service has none.

    Luma is asked (its list echoes each request); a provider with no lookup cannot be asked,
    so nothing is sent again: the unit ends in `unknown_outcome` with what is known.
    """
    assert unit.sent_at is not None and prepared.request is not None
    sent = datetime.fromtimestamp(unit.sent_at, UTC).isoformat(timespec="seconds")
    if runner.provider != "luma":
        raise DreamError(
            "unknown_outcome",
            f"a create for this unit of work was sent at {sent} and its answer was never"
            f" recorded; {runner.provider} offers no way to look it up, so it was not sent"
            " again. Check the provider's dashboard or your callback URL for a request made"
            " then; to pay for a new one, run the node again as a new run",
            retryable=False,
        )
    with claiming(lambda generation_id: book.claim(unit, generation_id)):
        found = await luma_find_created(runner.client, prepared.request, unit.sent_at)
    if found is None:
        return None
    generation_id = str(found["id"])
    book.created(unit, generation_id)
    return generation_id
