"""A SQLite file next to the index that holds what ingest can make again (vectors, enrichments)."""

from __future__ import annotations

import sqlite3
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
    truncated) is started afresh, since what it held can be made again."""

    SCHEMA: str = ""

    def __init__(self, path: Path):
        self.path = path
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._open()
            except sqlite3.DatabaseError:
                self.path.unlink(missing_ok=True)
                self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path)
        db.execute(self.SCHEMA)
        return db
