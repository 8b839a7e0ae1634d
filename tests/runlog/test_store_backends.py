"""How a store is named and opened: paths and URLs, the password never shown, `dreamnodes
store upgrade|current`, a forked child's own connections, and what importing costs."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dreamnodes.cli.store import add_store_arguments, store_command
from dreamnodes.errors import DreamError
from dreamnodes.runlog.database import locate
from dreamnodes.runlog.schema import HEAD
from dreamnodes.runlog.store import RunStore


def test_paths_and_urls_name_the_backend() -> None:
    assert locate("/tmp/x/runs.sqlite3").dialect == "sqlite"
    assert locate("/tmp/x/runs.sqlite3").file == "/tmp/x/runs.sqlite3"
    assert locate(":memory:").file is None
    assert locate("sqlite:////tmp/y.sqlite3").file == "/tmp/y.sqlite3"
    for given in ("postgresql://u:pw@db.example/runs", "postgres://u:pw@db.example/runs"):
        place = locate(given)
        assert place.dialect == "postgresql" and place.url.drivername == "postgresql+psycopg"
    assert locate("postgresql+psycopg://u@h/d").url.drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    "given",
    [
        "postgresql+psycopg2://u:hunter2hunter2@h/d",  # another driver
        "mysql://u:hunter2hunter2@h/d",  # another database
        "postgresql://u:hunter2hunter2@h:notaport/d",  # not a URL at all
    ],
)
def test_a_refused_url_never_shows_its_password(given: str) -> None:
    with pytest.raises(DreamError) as caught:
        RunStore(given)
    assert caught.value.code == "invalid_input" and caught.value.field == "store"
    assert "hunter2" not in str(caught.value) and "***" in str(caught.value)


def test_a_memory_store_works_across_threads() -> None:
    import threading

    with RunStore(":memory:") as store:
        ids: list[str] = []

        def work() -> None:
            ids.append(store.start(node="n", provider="p", params={}, context=None, options={}))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.id for r in store.list()) == sorted(ids)


def test_the_postgres_password_is_never_shown(postgres_database: str) -> None:
    password = postgres_database.split(":")[2].split("@")[0]
    with RunStore(postgres_database) as store:
        assert password not in repr(store) and password not in store.path
        assert "***" in store.path and store.dialect == "postgresql"
        with pytest.raises(DreamError) as missing:
            store.get("r_nope")
        assert password not in str(missing.value)
    wrong = postgres_database.replace(password, password[::-1])
    with pytest.raises(DreamError) as refused:
        RunStore(wrong)
    assert refused.value.field == "store" and "password authentication failed" in str(refused.value)
    assert password not in str(refused.value) and password[::-1] not in str(refused.value)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, str]]:
    parser = argparse.ArgumentParser()
    add_store_arguments(parser)
    code = store_command(parser.parse_args(argv))
    return code, json.loads(capsys.readouterr().out)


def test_store_current_and_upgrade(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, shown = run_cli(["current", "--store", store_url], capsys)
    assert code == 0 and shown["revision"] is None and shown["head"] == HEAD
    if "://" not in store_url:
        assert not Path(store_url).exists()  # only looked at, not made
    code, shown = run_cli(["upgrade", "--store", store_url], capsys)
    assert code == 0 and shown["revision"] == HEAD
    assert run_cli(["current", "--store", store_url], capsys)[1]["revision"] == HEAD
    if "://" in store_url:
        assert ":***@" in shown["store"] and "secret" not in json.dumps(shown)


def test_store_upgrade_fails_in_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, shown = run_cli(["upgrade", "--store", "mysql://u:hunter2hunter2@h/d"], capsys)
    assert code == 2 and shown["error"]["field"] == "store"  # type: ignore[index]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_uses_connections_of_its_own(store_url: str) -> None:
    with RunStore(store_url) as store:
        parents = store.start(node="n", provider="p", params={}, context=None, options={})
        pid = os.fork()
        if pid == 0:  # the child: write with the inherited store, then leave at once
            code = 1
            try:
                child = store.start(node="child", provider="p", params={}, context=None, options={})
                store.finish(child, output={})
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        store.finish(parents, output={})  # the parent's connection still works
        assert {r.node: r.status for r in store.list()} == {"n": "succeeded", "child": "succeeded"}


def imported_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.splitlines()[-1].split())


def test_listing_nodes_loads_no_database_code() -> None:
    loaded = imported_after(
        "import contextlib, io\nfrom dreamnodes.cli.entry import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['nodes'])"
    )
    assert "dreamnodes.runlog.store" in loaded  # the CLI imports it: it must stay light
    assert not {"sqlalchemy", "alembic", "psycopg"} & loaded


def test_opening_a_store_at_the_head_loads_no_alembic(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    RunStore(str(path)).close()
    loaded = imported_after(
        f"from dreamnodes.runlog.store import RunStore\nRunStore({str(path)!r}).close()"
    )
    assert "sqlalchemy" in loaded and "alembic" not in loaded
