"""A SQLite file next to the index that holds what ingest can make again (vectors, enrichments)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

_LOOKUP_BATCH = 500  # keys per SQL statement, under SQLite's limit on bound variables


def key_batches(keys: Sequence) -> Iterator[tuple[list, str]]:
    """`keys` in parts small enough for one statement, each with its `?,?,…` placeholders."""
    for i in range(0, len(keys), _LOOKUP_BATCH):
        part = list(keys[i : i + _LOOKUP_BATCH])
        yield part, ",".join("?" * len(part))


class SqliteFile:
    """Opened on first use with `SCHEMA` applied; a file that is not a database (damaged,
    truncated) is started afresh, since what it held can be made again. Each thread gets its own
    connection (SQLite's may not cross threads): `rag serve` indexes in a background thread, and
    a later ingest may come from another."""

    SCHEMA: str = ""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()

    @property
    def db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                db = self._open()
            except sqlite3.DatabaseError:
                self.path.unlink(missing_ok=True)
                db = self._open()
            self._local.db = db
        return db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path)
        db.execute(self.SCHEMA)
        return db
