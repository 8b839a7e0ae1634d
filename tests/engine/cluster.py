"""`serve --engine celery` and its `dreamnodes worker`s as real processes, for tests and benchmarks.

A `Cluster` starts one `serve` and any number of workers on one Redis (broker and limits) and
one SQLite run log, every process sending Luma's calls to `base_url` (the fake Luma of
`tests/runlog/exactly_once/fake_luma.py`, or a sandbox) with a key of its own. Each process
writes its output to a file in the cluster's folder (never a pipe nobody reads), shown by
`logs()` when a check fails. Used by `test_celery_engine.py` and `bench/engine_workers.py`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "tests" / "runlog" / "exactly_once" / "fake_luma.py"
TOKEN = "engine-test-token-5f2a9c"
KEY = "luma-fake-engine-key-8d3b1e"
BATCHES = "/v1/nodes/dream_machine/batches"
RUNS = "/v1/nodes/dream_machine/runs"


def until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll `check` until it returns something true; AssertionError naming `what` at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path
    killed: bool = False  # by `Cluster.kill` (SIGKILL: never reaped again) or `Cluster.stop`

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return not self.killed and self.process.poll() is None


@dataclass
class Fake:
    """The fake Luma, its own process: `control(...)` sets how it acts, `stats()` what it saw."""

    url: str
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return self.url + "/dream-machine/v1"

    def control(self, **settings: Any) -> None:
        httpx.post(self.url + "/_control", json=settings, timeout=30).raise_for_status()

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(self.url + "/_stats", timeout=30).json()
        return answer

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(30)


def start_fake(folder: Path) -> Fake:
    """The fake Luma on a free loopback port (it prints its URL first)."""
    log = folder / "fake.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(FAKE), "0"], stdout=out, stderr=out)
    url = until(lambda: _line(log, "fake: "), 60, "the fake Luma to start")
    fake = Fake(url, process)
    until(lambda: _answers(fake.url + "/_stats"), 30, "the fake Luma to answer")
    return fake


@dataclass
class RedisServer:
    """A throwaway `redis-server` on a free loopback port, without persistence."""

    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def start_redis(binary: str = "redis-server") -> RedisServer:
    import redis

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    def pong() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"redis-server did not start on port {port}")
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    until(pong, 30, "redis-server to answer", every=0.02)
    client.close()
    return RedisServer(url, process)


@dataclass
class Cluster:
    """One `serve --engine celery` and its workers, all on `redis_url` and one run log."""

    folder: Path
    redis_url: str
    base_url: str  # where Luma's calls go (the fake, or a sandbox)
    serve_args: Sequence[str] = ()
    worker_args: Sequence[str] = ("--concurrency", "8")
    key: str = KEY
    mode: str = "celery"  # serve's --engine; "embedded": serve alone does the runs (a reference)
    store_url: str = ""  # the run log: postgresql://... (default: a SQLite file in `folder`)
    url: str = ""  # serve's, once started
    serve: subprocess.Popen[bytes] | None = None
    workers: list[Worker] = field(default_factory=list)
    _client: httpx.Client | None = None

    @property
    def store(self) -> str:
        return self.store_url or str(self.folder / "runs.sqlite3")

    def env(self) -> dict[str, str]:
        out = {k: v for k, v in os.environ.items() if not k.startswith("DREAMNODES_")}
        # The tree these tests come from (a worktree's own src, not an installed copy).
        path = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        out.update(
            LUMA_API_KEY=self.key,
            DREAMNODES_SERVE_TOKEN=TOKEN,
            DREAMNODES_STORE=self.store,
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join(path),
        )
        return out

    # -- processes ---------------------------------------------------------------------------

    def start(self, workers: int) -> Cluster:
        """serve first (it makes the run log), then `workers` workers; waits until all are up."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.start_serve()
        for _ in range(workers):
            self.start_worker()
        self.wait_alive(workers)
        return self

    def start_serve(self) -> None:
        """serve (again, after `kill_serve`: on a new port, with a log of its own)."""
        before = len(list(self.folder.glob("serve*.log")))
        log = self.folder / (f"serve{before + 1}.log" if before else "serve.log")
        if self._client is not None:
            self._client.close()
            self._client = None
        broker = ("--broker", self.redis_url) if self.mode == "celery" else ()
        argv = [
            *("serve", "--engine", self.mode, *broker, "--port", "0"),
            *("--base-url", self.base_url, *self.serve_args),
        ]
        with log.open("wb") as out:
            self.serve = subprocess.Popen(
                [sys.executable, "-m", "dreamnodes.cli", *argv],
                stdout=out,
                stderr=out,
                env=self.env(),
            )
        self.url = until(lambda: self._serve_line(log), 90, "serve to listen")

    def kill_serve(self) -> None:
        """SIGKILL serve (a crash, or a host lost): the workers go on without it."""
        assert self.serve is not None
        self.serve.send_signal(signal.SIGKILL)
        self.serve.wait(30)

    def _serve_line(self, log: Path) -> str | None:
        assert self.serve is not None
        if self.serve.poll() is not None:
            raise AssertionError("serve exited:\n" + self.logs())
        return _line(log, "serve: ")

    def start_worker(self) -> Worker:
        log = self.folder / f"worker{len(self.workers) + 1}.log"
        argv = [
            *("worker", "--broker", self.redis_url, "--store", self.store),
            *("--base-url", self.base_url, *self.worker_args),
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "dreamnodes.cli", *argv],
                stdout=out,
                stderr=out,
                env=self.env(),
            )
        worker = Worker(process, log)
        self.workers.append(worker)
        return worker

    def live(self) -> list[Worker]:
        return [w for w in self.workers if w.running]

    def wait_alive(self, count: int, timeout: float = 120) -> dict[str, Any]:
        """GET /v1/engine until it shows `count` workers alive, each one of ours."""

        def check() -> dict[str, Any] | None:
            if any(not w.killed and not w.running for w in self.workers):
                raise AssertionError("a worker exited:\n" + self.logs())
            status = self.engine()
            ours = {w.pid for w in self.live()}
            alive = {w["pid"] for w in status.get("workers", []) if w["alive"]}
            return status if len(alive & ours) == count else None

        found: dict[str, Any] = until(check, timeout, f"{count} workers alive")
        return found

    def kill(self, worker: Worker) -> float:
        """SIGKILL a worker; the time it died. It is left unreaped until `close` (a zombie,
        as a crashed process is until its parent looks), so it must be seen dead as such."""
        worker.process.send_signal(signal.SIGKILL)
        worker.killed = True
        return time.monotonic()

    def stop(self, worker: Worker, timeout: float = 60) -> float:
        """SIGTERM a worker (as `docker stop` or systemd do: Celery's warm shutdown lets the
        steps under way finish) and wait until it exits; how long that took."""
        started = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        worker.killed = True  # gone on purpose: not a worker that exited by itself
        worker.process.wait(timeout)
        return time.monotonic() - started

    def heal(self, count: int) -> None:
        """Workers started until `count` live, and every one alive in GET /v1/engine."""
        while len(self.live()) < count:
            self.start_worker()
        self.wait_alive(count)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(30)
        if self.serve is not None and self.serve.poll() is None:
            self.serve.send_signal(signal.SIGTERM)
            try:
                self.serve.wait(30)
            except subprocess.TimeoutExpired:
                self.serve.kill()
                self.serve.wait(30)

    def logs(self, tail: int = 3000) -> str:
        parts = []
        for path in sorted(self.folder.glob("*.log")):
            text = path.read_text(encoding="utf-8", errors="replace")
            parts.append(f"--- {path.name} ---\n{text[-tail:]}")
        return "\n".join(parts)

    # -- the API -------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
            )
        return self._client

    def engine(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.get("/v1/engine").json()
        return answer

    def batch(self, batch_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.get(f"/v1/batches/{batch_id}").json()
        return answer

    def wait_batch(
        self,
        batch_id: str,
        timeout: float,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """The batch once it has ended; `on_progress` sees each view read while it runs."""

        def check() -> dict[str, Any] | None:
            view = self.batch(batch_id)
            if on_progress is not None:
                on_progress(view)
            return view if view["status"] != "running" else None

        found: dict[str, Any] = until(check, timeout, f"batch {batch_id} to end", every=0.2)
        return found


def _line(log: Path, prefix: str) -> str | None:
    """The value of the first `prefix...` line a process printed (None before it does)."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return None


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return False
    return True


def dumps(value: Any) -> str:
    return json.dumps(value, indent=1)[:4000]
