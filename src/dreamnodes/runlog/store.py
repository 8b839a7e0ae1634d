"""The run log: every node execution recorded in an embedded SQLite file, secrets removed.

One `RunStore` may be shared by many threads (one connection behind a lock, short
transactions) and one file by many processes (WAL journal, a busy timeout). Nothing secret is
written: every JSON part goes through `scrub` first, and the serialised text is checked again.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import secrets as secrets_module
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dreamnodes.errors import Attempt, DreamError
from dreamnodes.redact import REDACTED, scrub, scrub_text
from dreamnodes.runlog.heartbeat import Heartbeat
from dreamnodes.runlog.owner import LEASE, alive, this_owner

__all__ = ["REDACTED", "STATUSES", "RunRecord", "RunStore", "resume_key", "scrub"]

STATUSES = ("running", "succeeded", "failed", "interrupted")

# Key values found in the environment are scrubbed too, unless too short to be a real key
# (replacing a one-letter "key" everywhere would wreck the record, not protect it).
_SECRET_ENV_VARS = ("LUMA_API_KEY", "PIXAZO_API_KEY")
_MIN_ENV_SECRET_LEN = 8

_BUSY_TIMEOUT_MS = 30_000
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"

# Each entry takes the schema from version i to i + 1; never edit one, append a new one.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS runs (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        node TEXT NOT NULL,
        provider TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        params TEXT NOT NULL,
        context TEXT,
        request TEXT,
        output TEXT,
        error TEXT,
        generation_id TEXT,
        resume_key TEXT,
        options TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS attempts (
        seq INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        number INTEGER NOT NULL,
        status INTEGER,
        seconds REAL NOT NULL,
        error TEXT
    );
    CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, seq);
    CREATE INDEX IF NOT EXISTS runs_by_node ON runs(node, seq);
    CREATE INDEX IF NOT EXISTS runs_by_resume_key ON runs(resume_key, seq)
        WHERE resume_key IS NOT NULL;
    CREATE INDEX IF NOT EXISTS attempts_by_run ON attempts(run_id, seq);
    """,
    # Exactly once: units of work (reserved by an owner with a lease) and the generations
    # each one claimed. Every earlier run becomes a unit; one that may have sent a create and
    # recorded no generation keeps `sent_at`, so its lost create is looked for, never resent.
    """
    ALTER TABLE runs ADD COLUMN owner TEXT;
    ALTER TABLE runs ADD COLUMN lease_until REAL;
    UPDATE runs SET resume_key = 'run:' || id WHERE resume_key IS NULL;
    CREATE TABLE IF NOT EXISTS units (
        key TEXT PRIMARY KEY,
        owner TEXT,
        lease_until REAL,
        run_id TEXT,
        reserved_at REAL NOT NULL,
        sent_at REAL,
        generation_id TEXT
    );
    CREATE TABLE IF NOT EXISTS claims (
        generation_id TEXT PRIMARY KEY,
        unit TEXT NOT NULL,
        claimed_at REAL NOT NULL
    );
    INSERT OR IGNORE INTO units (key, reserved_at, sent_at, generation_id)
        SELECT resume_key,
               (julianday(MIN(started_at)) - 2440587.5) * 86400.0,
               CASE WHEN COUNT(generation_id) = 0
                    THEN (julianday(MIN(started_at)) - 2440587.5) * 86400.0 END,
               MAX(generation_id)
        FROM runs GROUP BY resume_key;
    INSERT OR IGNORE INTO claims (generation_id, unit, claimed_at)
        SELECT generation_id, resume_key, 0 FROM runs WHERE generation_id IS NOT NULL;
    CREATE INDEX IF NOT EXISTS units_by_owner ON units(owner) WHERE owner IS NOT NULL;
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


def default_store_path() -> str:
    """$DREAMNODES_STORE if set, else runs.sqlite3 in the user's data directory."""
    explicit = os.environ.get("DREAMNODES_STORE")
    if explicit:
        return explicit
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    elif os.environ.get("XDG_DATA_HOME"):
        base = Path(os.environ["XDG_DATA_HOME"])
    else:
        base = Path.home() / ".local" / "share"
    return str(base / "dreamnodes" / "runs.sqlite3")


@dataclass(frozen=True)
class RunRecord:
    """One recorded execution of a node, as stored (secrets already removed)."""

    id: str
    node: str
    provider: str
    status: str  # "running" | "succeeded" | "failed"
    started_at: str
    finished_at: str | None
    params: dict[str, Any]
    context: dict[str, Any] | None
    request: dict[str, Any] | None
    attempts: list[dict[str, Any]]
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    generation_id: str | None
    resume_key: str | None  # the unit of work the run does (see dreamnodes.runlog.reservations)
    options: dict[str, Any]
    owner: str | None = None  # the process running it, while it runs
    lease_until: float | None = None

    @property
    def abandoned(self) -> bool:
        """Marked running, but the process that ran it is gone (killed, or lost its host)."""
        return self.status == "running" and not alive(self.owner, self.lease_until, time.time())

    @property
    def shown_status(self) -> str:
        """The status a user should see: a dead process's run is `abandoned`, not running."""
        return "abandoned" if self.abandoned else self.status

    @property
    def seconds(self) -> float | None:
        """How long the run took, or None while it is running."""
        if self.finished_at is None:
            return None
        return (_parse_time(self.finished_at) - _parse_time(self.started_at)).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.shown_status}


def resume_key(
    node: str, provider: str, base_url: str, index: int, request: Mapping[str, Any]
) -> str:
    """The same item of the same loop against the same service gives the same key.

    `callback_url` is left out wherever it appears: it carries a per-run token, and a
    resumed loop must still find what the first run created.
    """
    canonical = json.dumps(
        {
            "node": node,
            "provider": provider,
            "base_url": base_url.rstrip("/"),
            "index": index,
            "request": _without_callback(request),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _without_callback(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _without_callback(v) for k, v in value.items() if k != "callback_url"}
    if isinstance(value, list | tuple):
        return [_without_callback(v) for v in value]
    return value


class RunStore:
    """The run log in one SQLite file; safe to share between threads and processes."""

    def __init__(self, path: str | None = None, *, secrets: Iterable[str] = ()) -> None:
        self.path = path or default_store_path()
        env = (os.environ.get(name, "") for name in _SECRET_ENV_VARS)
        self._secrets = sorted(
            {s for s in secrets if s} | {s for s in env if len(s) >= _MIN_ENV_SECRET_LEN},
            key=len,
            reverse=True,
        )
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.heartbeat = Heartbeat(self)
        try:
            if self.path != ":memory:":
                _private_file(Path(self.path))
            self._db = self._connect()
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise DreamError(
                "invalid_input", f"cannot open the run store {self.path}: {exc}", field="store"
            ) from exc

    # -- writing ---------------------------------------------------------------------------

    def start(
        self,
        *,
        node: str,
        provider: str,
        params: Mapping[str, Any],
        context: Mapping[str, Any] | None,
        options: Mapping[str, Any],
        resume_key: str | None = None,
    ) -> str:
        """Record a run that is starting; returns its id (sortable by start time).

        The run is owned by this process (see `dreamnodes.runlog.owner`): if the process dies,
        the run is seen as abandoned at once on this host, and when its lease ends elsewhere.
        """
        run_id = new_run_id()
        with self._write() as db:
            db.execute(
                "INSERT INTO runs (id, node, provider, status, started_at, params, context,"
                " options, resume_key, owner, lease_until)"
                " VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    node,
                    provider,
                    _now(),
                    self._json(params),
                    None if context is None else self._json(context),
                    self._json(options),
                    resume_key or f"run:{run_id}",
                    this_owner(),
                    time.time() + LEASE,
                ),
            )
        self.heartbeat.start()
        return run_id

    def set_unit(self, run_id: str, key: str) -> None:
        """The unit of work this run does (a loop item's key, or the run it retries)."""
        self._update(run_id, "resume_key = ?", (key,))

    def set_request(self, run_id: str, request: Mapping[str, Any]) -> None:
        self._update(run_id, "request = ?", (self._json(request),))

    def set_generation(self, run_id: str, generation_id: str) -> None:
        """Called as soon as a create is answered, so that a crashed loop can resume."""
        self._update(run_id, "generation_id = ?", (generation_id,))

    def add_attempts(self, run_id: str, attempts: Sequence[Attempt]) -> None:
        rows = [
            (
                run_id,
                a.number,
                a.status,
                a.seconds,
                None if a.error is None else self._text(a.error),
            )
            for a in attempts
        ]
        with self._write() as db:
            self._require(db, run_id)
            db.executemany(
                "INSERT INTO attempts (run_id, number, status, seconds, error)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def finish(
        self,
        run_id: str,
        *,
        output: Mapping[str, Any] | None = None,
        error: Mapping[str, Any] | None = None,
        status: str | None = None,
    ) -> None:
        """Close a run: failed if an error is given, succeeded otherwise (or `status`)."""
        status = status or ("failed" if error is not None else "succeeded")
        generation_id = _generation_of(output) or _generation_of(error)
        self._update(
            run_id,
            "status = ?, finished_at = ?, output = ?, error = ?, owner = NULL,"
            " generation_id = COALESCE(generation_id, ?)",
            (
                status,
                _now(),
                None if output is None else self._json(output),
                None if error is None else self._json(error),
                generation_id,
            ),
        )

    # -- reading ---------------------------------------------------------------------------

    def get(self, run_id: str) -> RunRecord:
        with self._read() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise self._not_found(run_id)
            return self._record(db, row)

    def list(
        self, *, limit: int = 50, status: str | None = None, node: str | None = None
    ) -> list[RunRecord]:
        """The most recent runs first, optionally only those with a status or of a node."""
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if node is not None:
            where.append("node = ?")
            args.append(node)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._read() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM runs {clause} ORDER BY seq DESC LIMIT ?",
                (*args, max(0, limit)),
            ).fetchall()
            return [self._record(db, row) for row in rows]

    def generation_for(self, resume_key: str, *, include_failed: bool = False) -> str | None:
        """The generation the latest earlier run with this key created, if any.

        A generation that ended `failed` is skipped unless asked for, so that running the
        loop again makes a new one for that item instead of reporting the old failure.
        """
        with self._read() as db:
            rows = db.execute(
                "SELECT generation_id, error FROM runs WHERE resume_key = ?"
                " AND generation_id IS NOT NULL ORDER BY seq DESC",
                (resume_key,),
            ).fetchall()
        for generation_id, error in rows:
            code = json.loads(error).get("code") if error else None
            if include_failed or code != "generation_failed":
                return str(generation_id)
        return None

    def unanswered_since(self, resume_key: str, *, excluding: str | None = None) -> float | None:
        """When the earliest run with this key started, if none of them recorded a generation.

        Such a run may have sent its create and lost the answer; a loop run again looks for
        that generation (from this time on) before it pays for another.
        """
        with self._read() as db:
            row = db.execute(
                "SELECT MIN(started_at), COUNT(generation_id) FROM runs"
                " WHERE resume_key = ? AND id IS NOT ?",
                (resume_key, excluding),
            ).fetchone()
        if row is None or row[0] is None or row[1]:
            return None
        return _parse_time(str(row[0])).timestamp()

    def close(self) -> None:
        self.heartbeat.stop()
        with self._lock:
            self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({self.path!r})"

    # -- internals -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    def _migrate(self) -> None:
        with self._write() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise DreamError(
                    "invalid_input",
                    f"the run store {self.path} has schema version {version}, newer than this"
                    f" dreamnodes knows ({SCHEMA_VERSION}); upgrade dreamnodes",
                    field="store",
                )
            for step in _MIGRATIONS[version:]:
                for statement in step.split(";"):
                    if statement.strip():
                        db.execute(statement)
            if version < SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _connection(self) -> sqlite3.Connection:
        # A forked child must not share its parent's SQLite handle.
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._db = self._connect()
        return self._db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._connection()
            # IMMEDIATE takes the write lock up front, so a busy file waits instead of failing.
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._connection()
            db.execute("BEGIN")
            try:
                yield db
            finally:
                db.execute("COMMIT")

    def _update(self, run_id: str, assignments: str, args: tuple[Any, ...]) -> None:
        with self._write() as db:
            cursor = db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*args, run_id))
            if cursor.rowcount == 0:
                raise self._not_found(run_id)

    def _require(self, db: sqlite3.Connection, run_id: str) -> None:
        if db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise self._not_found(run_id)

    def _not_found(self, run_id: str) -> DreamError:
        return DreamError("not_found", f"no run {run_id!r} in {self.path}", field="id")

    def _text(self, text: str) -> str:
        return scrub_text(text, self._secrets)

    def _json(self, value: Any) -> str:
        text = json.dumps(scrub(value, self._secrets), ensure_ascii=False, default=str)
        # Belt and braces: a secret hidden in something `default=str` rendered.
        return scrub_text(text, self._secrets)

    def _record(self, db: sqlite3.Connection, row: tuple[Any, ...]) -> RunRecord:
        attempts = [
            {"number": number, "status": status, "seconds": seconds, "error": error}
            for number, status, seconds, error in db.execute(
                "SELECT number, status, seconds, error FROM attempts WHERE run_id = ? ORDER BY seq",
                (row[0],),
            )
        ]
        (run_id, node, provider, status, started, finished, params, context, request) = row[:9]
        (output, error, generation_id, key, options, owner, lease_until) = row[9:]
        return RunRecord(
            id=run_id,
            node=node,
            provider=provider,
            status=status,
            started_at=started,
            finished_at=finished,
            params=json.loads(params),
            context=_loads(context),
            request=_loads(request),
            attempts=attempts,
            output=_loads(output),
            error=_loads(error),
            generation_id=generation_id,
            resume_key=key,
            options=json.loads(options),
            owner=owner,
            lease_until=lease_until,
        )


_COLUMNS = (
    "id, node, provider, status, started_at, finished_at, params, context, request,"
    " output, error, generation_id, resume_key, options, owner, lease_until"
)


def _private_file(path: Path) -> None:
    """The run log holds callback tokens and prompts: readable by its owner only.

    A folder we create is 0700; the file is created 0600 (SQLite gives its -wal and -shm files
    the database file's mode) and an existing one of ours is narrowed to 0600.
    """
    folder = path.parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        info = os.fstat(fd)
        if info.st_mode & 0o077 and info.st_uid == getattr(os, "getuid", lambda: -1)():
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def new_run_id() -> str:
    """ "r_" + 48 bits of milliseconds + 32 random bits in Crockford base32: sorts by time."""
    number = (time.time_ns() // 1_000_000) << 32 | secrets_module.randbits(32)
    digits = []
    for _ in range(16):
        digits.append(_CROCKFORD[number & 31])
        number >>= 5
    return "r_" + "".join(reversed(digits))


def _generation_of(part: Mapping[str, Any] | None) -> str | None:
    if not part:
        return None
    # A normalised generation has an id and a state; other outputs' ids are not generations.
    value = part.get("generation_id") or (part.get("id") if "state" in part else None)
    return value if isinstance(value, str) and value else None


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)
