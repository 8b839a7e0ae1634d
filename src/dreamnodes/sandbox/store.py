"""Where the sandbox keeps its records: in memory, written through to SQLite with `--db`.

A record is a plain JSON-able dict: `{"kind": "luma"|"pixazo", "id", "gen": Generation, ...}`.
Reads never touch the disk; every write is a single UPSERT.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any


class Store:
    def __init__(self, db: str | None = None) -> None:
        self._records: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []  # insertion order, oldest first
        self._db: sqlite3.Connection | None = None
        self.credits: float | None = None
        if db:
            self._db = sqlite3.connect(db, check_same_thread=False)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS records"
                " (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, data TEXT)"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self._db.commit()
            for rid, data in self._db.execute("SELECT id, data FROM records ORDER BY seq"):
                self._records[rid] = json.loads(data)
                self._order.append(rid)
            row = self._db.execute("SELECT value FROM meta WHERE key = 'credits'").fetchone()
            if row is not None:
                self.credits = float(row[0])

    def get(self, rid: str) -> dict[str, Any] | None:
        return self._records.get(rid)

    def put(self, record: dict[str, Any]) -> None:
        rid = record["id"]
        if rid not in self._records:
            self._order.append(rid)
        self._records[rid] = record
        if self._db is not None:
            self._db.execute(
                "INSERT INTO records (id, data) VALUES (?, ?)"
                " ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                (rid, json.dumps(record)),
            )
            self._db.commit()

    def delete(self, rid: str) -> None:
        if self._records.pop(rid, None) is not None:
            self._order.remove(rid)
        if self._db is not None:
            self._db.execute("DELETE FROM records WHERE id = ?", (rid,))
            self._db.commit()

    def all(self, kind: str) -> list[dict[str, Any]]:
        """Records of one kind, oldest first."""
        return [r for rid in self._order if (r := self._records[rid])["kind"] == kind]

    def save_credits(self, value: float) -> None:
        self.credits = value
        if self._db is not None:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('credits', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (repr(value),),
            )
            self._db.commit()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
