"""Passage vectors by a hash of the embedder's name and the text, in SQLite next to the index.

Why: a version is published only when complete, so without this a killed ingest would throw
away every vector it computed. Each batch is committed here as soon as it is embedded, and the
next ingest takes what it finds instead of embedding it again. It also spares re-embedding a
passage whose chunk id changed while its text did not (a line added above it shifts its
offsets). Only the ingest holding the ingest lock opens it. It is a cache: deleting the file is
always safe, and an unreadable one is started afresh.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from .sqlite_file import SqliteFile, key_batches


class EmbeddingCache(SqliteFile):
    SCHEMA = "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL, used REAL NOT NULL)"

    def get(self, embedder_name: str, texts: list[str]) -> dict[int, np.ndarray]:
        """The cached vectors of `texts`, by position; marks them used now."""
        keys = [_key(embedder_name, t) for t in texts]
        positions: dict[bytes, list[int]] = {}
        for i, key in enumerate(keys):
            positions.setdefault(key, []).append(i)
        found: dict[int, np.ndarray] = {}
        now = time.time()
        with self.db:
            for part, marks in key_batches(keys):
                for key, blob in self.db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", part):
                    found.update(dict.fromkeys(positions[key], np.frombuffer(blob, dtype=np.float32)))
                self.db.execute(f"UPDATE vectors SET used = ? WHERE key IN ({marks})", [now, *part])
        return found

    def put(self, embedder_name: str, texts: list[str], vectors: np.ndarray) -> None:
        """Store and commit at once: a kill after this keeps these vectors."""
        now = time.time()
        rows = [(_key(embedder_name, t), np.asarray(v, dtype=np.float32).tobytes(), now) for t, v in zip(texts, vectors)]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)

    def forget_unused_since(self, moment: float) -> None:
        """Drop the vectors not looked up or stored since `moment` (after a rebuild: what no passage uses)."""
        with self.db:
            self.db.execute("DELETE FROM vectors WHERE used < ?", (moment,))
        self.db.execute("VACUUM")


def _key(embedder_name: str, text: str) -> bytes:
    return hashlib.sha256(f"{embedder_name}\n{text}".encode()).digest()
