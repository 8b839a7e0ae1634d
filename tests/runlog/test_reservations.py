"""Units of work and claims in the run log: one holder at a time, one unit per generation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dreamnodes.runlog.reservations import Held, Reservations, Unit
from dreamnodes.runlog.sqltext import sql
from dreamnodes.runlog.store import RunStore


@pytest.fixture
def book(store_url: str) -> Iterator[Reservations]:
    with RunStore(store_url) as store:
        yield Reservations(store)


def set_units(book: Reservations, assignments: str, **values: object) -> None:
    """What another process or host would have written: every unit changed."""
    with book._store.write() as db:
        db.execute(sql(f"UPDATE units SET {assignments}"), values)


def reserve(book: Reservations, key: str) -> Unit:
    got = book.try_reserve(key, "r_test")
    assert isinstance(got, Unit)
    return got


def test_a_held_unit_is_refused_to_a_second_holder_until_released(book: Reservations) -> None:
    first = reserve(book, "item-1")
    assert isinstance(book.try_reserve("item-1", "r_other"), Held)
    book.sending(first)
    book.release(first)
    second = reserve(book, "item-1")
    assert second.sent_at is not None and second.generation_id is None  # look before resending


def test_a_generation_is_claimed_by_one_unit_only(book: Reservations) -> None:
    one, two = reserve(book, "item-1"), reserve(book, "item-2")
    assert book.created(one, "gen-a")
    assert book.claim(one, "gen-a")  # claiming again for the same unit is fine
    assert not book.claim(two, "gen-a")
    assert not book.created(two, "gen-a")
    book.release(one)
    assert reserve(book, "item-1").generation_id == "gen-a"


def test_a_dead_processs_reservation_is_taken_over_at_once(
    book: Reservations, dead_owner: str
) -> None:
    reserve(book, "item-1")
    set_units(book, "owner = :owner, lease_until = 1e12", owner=dead_owner)
    assert isinstance(book.try_reserve("item-1", "r_next"), Unit)


def test_another_hosts_reservation_holds_until_its_lease_ends(book: Reservations) -> None:
    reserve(book, "item-1")
    set_units(book, "owner = 'elsewhere:42:1/abc', lease_until = 1e12")
    assert isinstance(book.try_reserve("item-1", "r_next"), Held)
    set_units(book, "lease_until = 1")
    assert isinstance(book.try_reserve("item-1", "r_next"), Unit)
