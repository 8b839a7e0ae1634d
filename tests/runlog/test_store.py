"""The run log: records round-trip, secrets never reach the file, lists, resume keys, threads."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dreamnodes.errors import Attempt, DreamError
from dreamnodes.runlog.store import (
    SCHEMA_VERSION,
    RunStore,
    default_store_path,
    new_run_id,
    resume_key,
    scrub,
)

KEY = "luma-7f3c9a1e5b2d4f60a8c1e9b7d3f5a2c4"


@pytest.fixture
def store(store_url: str) -> Iterator[RunStore]:
    with RunStore(store_url) as opened:
        yield opened


def start(store: RunStore, node: str = "dream_machine", **kw: object) -> str:
    return store.start(
        node=node,
        provider="luma",
        params={"prompt": "a cat"},
        context={"trigger": {"n": 1}},
        options={"wait": "poll", "timeout": 900},
        **kw,  # type: ignore[arg-type]
    )


def test_a_finished_run_reads_back_as_written(store: RunStore) -> None:
    run_id = store.start(
        node="dream_machine",
        provider="luma",
        params={"prompt": "a cat", "loop": True, "keyframes": {"frame0": {"type": "image"}}},
        context={"trigger": {"prompt": "a cat"}},
        options={"wait": "poll", "timeout": 900, "base_url": "http://127.0.0.1:1"},
        resume_key="k1",
    )
    request = {"method": "POST", "path": "/generations", "query": {}, "body": {"prompt": "a cat"}}
    store.set_request(run_id, request)
    store.set_generation(run_id, "gen-1")
    store.add_attempts(run_id, [Attempt(1, 503, 0.25, "service unavailable"), Attempt(2, 201, 0.5)])
    store.add_attempts(run_id, [Attempt(1, 200, 0.1)])
    output = {"id": "gen-1", "state": "completed", "assets": {"video": "http://x/v.mp4"}}
    store.finish(run_id, output=output)

    record = store.get(run_id)
    assert record.id == run_id and run_id.startswith("r_")
    assert (record.node, record.provider, record.status) == ("dream_machine", "luma", "succeeded")
    assert record.params["keyframes"] == {"frame0": {"type": "image"}}
    assert record.params["loop"] is True
    assert record.context == {"trigger": {"prompt": "a cat"}}
    assert record.options == {"wait": "poll", "timeout": 900, "base_url": "http://127.0.0.1:1"}
    assert record.request == request
    assert record.attempts == [
        {"number": 1, "status": 503, "seconds": 0.25, "error": "service unavailable"},
        {"number": 2, "status": 201, "seconds": 0.5, "error": None},
        {"number": 1, "status": 200, "seconds": 0.1, "error": None},
    ]
    assert record.output == output and record.error is None
    assert record.generation_id == "gen-1" and record.resume_key == "k1"
    assert record.finished_at is not None and record.seconds is not None
    assert record.seconds >= 0


def test_a_running_run_has_no_end_and_a_failed_one_keeps_its_error(store: RunStore) -> None:
    run_id = start(store)
    assert store.get(run_id).status == "running"
    assert store.get(run_id).finished_at is None and store.get(run_id).seconds is None
    error = DreamError("network_error", "connection dropped", retryable=True, generation_id="g9")
    store.finish(run_id, error=error.to_dict())
    record = store.get(run_id)
    assert record.status == "failed"
    assert record.error is not None and record.error["code"] == "network_error"
    assert record.generation_id == "g9"  # taken from the error when the create was answered


def test_an_unknown_run_is_not_found_on_the_id_field(store: RunStore) -> None:
    for call in (
        lambda: store.get("r_nope"),
        lambda: store.finish("r_nope", output={}),
        lambda: store.set_generation("r_nope", "g"),
        lambda: store.add_attempts("r_nope", [Attempt(1, 200, 0.1)]),
    ):
        with pytest.raises(DreamError) as caught:
            call()
        assert caught.value.code == "not_found" and caught.value.field == "id"


def test_the_api_key_appears_nowhere_in_the_database_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LUMA_API_KEY", raising=False)
    path = tmp_path / "runs.sqlite3"
    store = RunStore(str(path), secrets=[KEY])
    run_id = store.start(
        node="dream_machine",
        provider="luma",
        params={"prompt": f"leak {KEY} here", "api_key": KEY, "nested": [{"apiKey": "x"}]},
        context={"trigger": {"Authorization": f"Bearer {KEY}", "text": KEY}},
        options={"wait": "poll", "base_url": f"http://u:{KEY}@127.0.0.1"},
    )
    store.set_request(
        run_id,
        {
            "method": "POST",
            "path": "/generations",
            "headers": {"authorization": f"Bearer {KEY}", "X-Api-Key": KEY, "accept": "json"},
            "body": {"prompt": "a cat", "max_tokens": 5},
        },
    )
    store.add_attempts(run_id, [Attempt(1, 401, 0.1, f"bad key {KEY}")])
    error = DreamError("auth_failed", f"key {KEY} was refused", status=401)
    store.finish(run_id, error=error.to_dict(), output={"echo": KEY})
    store.close()

    files = [p for p in tmp_path.iterdir() if p.name.startswith("runs.sqlite3")]
    assert files, "the store wrote no file"
    for file in files:
        assert KEY.encode() not in file.read_bytes(), file.name

    record = RunStore(str(path)).get(run_id)
    assert record.params["prompt"] == "leak [redacted] here"
    assert record.params["api_key"] == "[redacted]"
    assert record.params["nested"] == [{"apiKey": "[redacted]"}]
    assert record.request is not None
    assert record.request["headers"] == {
        "authorization": "[redacted]",
        "X-Api-Key": "[redacted]",
        "accept": "json",
    }
    assert record.request["body"] == {"prompt": "a cat", "max_tokens": 5}
    assert record.error is not None and record.error["message"] == "key [redacted] was refused"
    assert record.attempts[0]["error"] == "bad key [redacted]"


def test_the_key_in_the_environment_is_scrubbed_without_being_passed(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUMA_API_KEY", KEY)
    store = RunStore(store_url)
    run_id = store.start(
        node="n", provider="luma", params={"prompt": KEY}, context=None, options={}
    )
    assert store.get(run_id).params == {"prompt": "[redacted]"}


def test_scrub_redacts_secret_keys_and_strings_but_not_lookalikes() -> None:
    value = {
        "Password": "p",
        "client_secret": "s",
        "access_token": "t",
        "max_tokens": 10,
        "prompt": "say abc123 twice: abc123",
        "list": ("abc123", 3, None),
    }
    assert scrub(value, ["abc123"]) == {
        "Password": "[redacted]",
        "client_secret": "[redacted]",
        "access_token": "[redacted]",
        "max_tokens": 10,
        "prompt": "say [redacted] twice: [redacted]",
        "list": ["[redacted]", 3, None],
    }
    assert value["prompt"] == "say abc123 twice: abc123"  # the input is not changed


def test_list_is_newest_first_and_filters_by_status_and_node(store: RunStore) -> None:
    first = start(store, node="dream_machine")
    second = start(store, node="get_generation")
    third = start(store, node="dream_machine")
    store.finish(first, error={"code": "network_error", "message": "dropped"})
    store.finish(second, output={})

    assert [r.id for r in store.list()] == [third, second, first]
    assert [r.id for r in store.list(limit=2)] == [third, second]
    assert [r.id for r in store.list(status="failed")] == [first]
    assert [r.id for r in store.list(status="running")] == [third]
    assert [r.id for r in store.list(node="dream_machine")] == [third, first]
    assert [r.id for r in store.list(node="dream_machine", status="succeeded")] == []


def test_run_ids_sort_by_time() -> None:
    ids = []
    for _ in range(3):
        ids.append(new_run_id())
        threading.Event().wait(0.002)
    assert ids == sorted(ids)
    assert len(set(new_run_id() for _ in range(1000))) == 1000


def test_resume_key_ignores_dict_order_and_callback_url_but_not_the_index() -> None:
    body = {"prompt": "p", "model": "ray-2"}
    a = {"method": "POST", "path": "/generations", "body": body}
    b = {"body": {"model": "ray-2", "prompt": "p"}, "path": "/generations", "method": "POST"}
    with_callback = {**a, "body": {**body, "callback_url": "http://127.0.0.1:9/t/secret"}}
    base = ("dream_machine", "luma", "https://api.lumalabs.ai/dream-machine/v1")
    key = resume_key(*base, 0, a)
    assert len(key) == 64
    assert resume_key(*base, 0, b) == key
    assert resume_key(*base, 0, with_callback) == key
    assert resume_key(*base, 1, a) != key
    assert resume_key("dream_machine", "pixazo", base[2], 0, a) != key
    other_prompt = {**a, "body": {"prompt": "q", "model": "ray-2"}}
    assert resume_key(*base, 0, other_prompt) != key


def test_threads_writing_at_once_lose_nothing(store: RunStore) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(25):
                run_id = start(store, node=f"n{worker}", resume_key=f"{worker}-{i}")
                store.add_attempts(run_id, [Attempt(1, 201, 0.01)])
                store.set_generation(run_id, f"g{worker}-{i}")
                store.finish(run_id, output={"id": f"g{worker}-{i}", "state": "completed"})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    records = store.list(limit=1000)
    assert len(records) == 200
    assert all(r.status == "succeeded" and len(r.attempts) == 1 for r in records)
    assert {r.generation_id for r in records} == {f"g{w}-{i}" for w in range(8) for i in range(25)}


def test_two_stores_on_one_file_write_at_once(store_url: str) -> None:
    # Two connections stand in for two processes: WAL plus the busy timeout must serialise them.
    path = store_url
    stores = [RunStore(path), RunStore(path)]

    def work(store: RunStore) -> None:
        for _ in range(50):
            store.finish(start(store), output={})

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(RunStore(path).list(limit=500, status="succeeded")) == 100


def test_the_schema_version_is_recorded_and_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.sqlite3")
    RunStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(DreamError, match="newer"):
        RunStore(path)


def test_default_path_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DREAMNODES_STORE", str(tmp_path / "x.sqlite3"))
    assert default_store_path() == str(tmp_path / "x.sqlite3")
    monkeypatch.delenv("DREAMNODES_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_path() == str(tmp_path / "data" / "dreamnodes" / "runs.sqlite3")
    RunStore().close()  # created on first use, directories included
    assert (tmp_path / "data" / "dreamnodes" / "runs.sqlite3").exists()


def test_processes_writing_one_file_at_once_lose_nothing(store_url: str) -> None:
    path = store_url
    script = (
        "import sys\n"
        "from dreamnodes.runlog.store import RunStore\n"
        "store = RunStore(sys.argv[1])\n"
        "for i in range(30):\n"
        "    run = store.start(node=sys.argv[2], provider='luma', params={'i': i},"
        " context=None, options={})\n"
        "    store.set_generation(run, f'{sys.argv[2]}-{i}')\n"
        "    store.finish(run, output={})\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, path, f"p{n}"]) for n in range(3)]
    assert [p.wait(timeout=30) for p in procs] == [0, 0, 0]
    store = RunStore(path)
    assert len(store.list(limit=500, status="succeeded")) == 90
    assert {len(store.list(limit=500, node=f"p{n}")) for n in range(3)} == {30}
