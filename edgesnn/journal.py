"""Store and forward: every outgoing diagnosis and state change is journaled in SQLite first.

A row stays "unsent" until the broker acknowledges it (QoS 1), so what could not be published
while the broker was away is published after reconnect, in order, and survives a restart of the
monitor itself. Sent rows are pruned beyond `keep_sent` to bound the file.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from edgesnn.errors import EdgesnnError


class Journal:
    def __init__(self, path: str | Path = ":memory:", keep_sent: int = 100_000):
        # Used by one thread at a time (the monitor's worker), which need not be the creating one.
        try:
            self.db = sqlite3.connect(str(path), check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, "
                            "payload BLOB NOT NULL, retain INTEGER NOT NULL, created REAL NOT NULL, "
                            "sent INTEGER NOT NULL DEFAULT 0)")
            self.db.execute("CREATE INDEX IF NOT EXISTS unsent ON outbox (sent, id)")
        except sqlite3.Error as exc:  # not a database, a folder, a folder that does not exist, ...
            raise EdgesnnError(f"{path}: cannot use it as the journal ({exc})") from None
        self.keep_sent = keep_sent

    def add(self, topic: str, payload: bytes, retain: bool) -> int:
        cur = self.db.execute("INSERT INTO outbox (topic, payload, retain, created) VALUES (?, ?, ?, ?)",
                              (topic, payload, int(retain), time.time()))
        return cur.lastrowid

    def mark_sent(self, ids) -> None:
        self.db.executemany("UPDATE outbox SET sent = 1 WHERE id = ?", [(i,) for i in ids])

    def unsent(self, limit: int = 1000, exclude=()) -> list[tuple[int, str, bytes, bool]]:
        rows = self.db.execute("SELECT id, topic, payload, retain FROM outbox WHERE sent = 0 ORDER BY id LIMIT ?",
                               (limit + len(exclude),)).fetchall()
        return [(i, t, p, bool(r)) for i, t, p, r in rows if i not in exclude][:limit]

    def count_unsent(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM outbox WHERE sent = 0").fetchone()[0]

    def commit(self) -> None:
        self.db.execute("DELETE FROM outbox WHERE sent = 1 AND id <= "
                        "(SELECT COALESCE(MAX(id), 0) FROM outbox) - ?", (self.keep_sent,))
        self.db.commit()

    def close(self) -> None:
        self.db.commit()
        self.db.close()
