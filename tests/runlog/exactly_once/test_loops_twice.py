"""Loops killed and run again, run twice at once, of identical items, without waiting."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from .conftest import Fake, dn, finish, items_file, kill, start, until


def recorded(store: str) -> int:
    try:
        with sqlite3.connect(store) as db:
            return int(
                db.execute("SELECT COUNT(*) FROM runs WHERE generation_id IS NOT NULL").fetchone()[
                    0
                ]
            )
    except sqlite3.Error:
        return 0


FOX = json.dumps({"prompt": "{{item.p}}", "model": "ray-2"})


def loop_args(fake: Fake, store: str, items: str, *more: str) -> list[str]:
    return [
        "run",
        "dream_machine",
        "--params",
        FOX,
        "--each",
        items,
        "--base-url",
        fake.base,
        "--store",
        store,
        "--video-per-minute",
        "1000",
        *more,
    ]


def check_one_generation_per_item(fake: Fake, lines: list[dict[str, object]], n: int) -> None:
    stats = fake.stats()
    ids = [line["id"] for line in lines]
    assert len(lines) == n and all(line.get("state") == "completed" for line in lines), lines
    assert len(set(ids)) == n, "two items were handed the same generation"
    assert stats["creates"] == n, f"{stats['creates']} generations for {n} items"
    assert {g["id"] for g in stats["generations"]} == set(ids), "a paid generation is orphaned"


def test_a_killed_callback_loop_run_again_creates_each_item_once(
    fake: Fake, store: str, tmp_path: Path
) -> None:
    n = 12
    items = items_file(tmp_path, [{"p": f"fox number {i}"} for i in range(n)])
    fake.control(duration=1.5, answer_delay=0.4)
    args = loop_args(fake, store, items, "--wait", "callback", "--concurrency", "6")
    first = start(*args)
    until(lambda: fake.stats()["creates"] >= 4)
    kill(first)
    fake.control(answer_delay=0.0)
    again = dn(*args)
    assert again.code == 0, again.err
    check_one_generation_per_item(fake, again.lines(), n)


def test_two_processes_on_one_loop_create_each_item_once(
    fake: Fake, store: str, tmp_path: Path
) -> None:
    n = 16
    items = items_file(tmp_path, [{"p": f"owl number {i}"} for i in range(n)])
    # Creates take a while to land: the other process cannot see them yet when it looks.
    fake.control(duration=1.0, accept_delay=0.5)
    args = loop_args(fake, store, items, "--wait", "--concurrency", "8", "--time-scale", "4")
    one, two = start(*args), start(*args)
    first, second = finish(one), finish(two)
    assert first.code == 0 and second.code == 0, (first.err, second.err)
    check_one_generation_per_item(fake, first.lines(), n)
    assert [line["id"] for line in second.lines()] == [line["id"] for line in first.lines()]


def test_identical_items_around_a_crash_get_one_generation_each(
    fake: Fake, store: str, tmp_path: Path
) -> None:
    n = 8
    items = items_file(tmp_path, [{"p": "the very same fox"}] * n)
    # Two creates are answered at once, two answers are still on their way at the crash.
    fake.control(duration=1.0, answer_delays=[0, 0, 5, 5])
    args = loop_args(fake, store, items, "--wait", "--concurrency", "4", "--time-scale", "4")
    first = start(*args)
    until(lambda: fake.stats()["creates"] >= 4 and recorded(store) >= 2)
    kill(first)
    fake.control(answer_delay=0.0)
    again = dn(*args)
    assert again.code == 0, again.err
    check_one_generation_per_item(fake, again.lines(), n)


def test_a_loop_without_wait_keeps_within_the_running_cap(
    fake: Fake, store: str, tmp_path: Path
) -> None:
    n = 40
    items = items_file(tmp_path, [{"p": f"heron {i}"} for i in range(n)])
    fake.control(duration=0.6, running_cap=10)
    done = dn(*loop_args(fake, store, items, "--concurrency", "40", "--time-scale", "10"))
    assert done.code == 0, done.err
    stats = fake.stats()
    assert stats["refused_429"] == 0
    assert stats["creates"] == n
    assert len({line["id"] for line in done.lines()}) == n
