"""What an LLM wrote about a chunk at ingest (`rag ingest --enrich`), by the chunk's content key,
in SQLite next to the index.

Why its own file: generating costs an LLM call per chunk (seconds to a minute on a CPU), so each
record is committed as soon as it is written; an interrupted enrich keeps everything it wrote,
and every later ingest, with or without an LLM, attaches it to the same chunk again. A chunk
whose text changed has another key and gets nothing until the next `--enrich`. Only the ingest
holding the ingest lock opens it. Deleting the file is safe (enrich again to get them back).
"""

from __future__ import annotations

import json
import time

from .sqlite_file import SqliteFile, key_batches


class EnrichmentStore(SqliteFile):
    SCHEMA = "CREATE TABLE IF NOT EXISTS enrichments (key TEXT PRIMARY KEY, record TEXT NOT NULL, written REAL NOT NULL)"

    def get(self, keys: list[str]) -> dict[str, dict]:
        """The stored records of these keys (missing keys are left out)."""
        if not self.path.exists():
            return {}  # never enriched: no file is made
        found: dict[str, dict] = {}
        for part, marks in key_batches(keys):
            for key, record in self.db.execute(f"SELECT key, record FROM enrichments WHERE key IN ({marks})", part):
                found[key] = json.loads(record)
        return found

    def put(self, key: str, record: dict) -> None:
        """Store and commit at once: a kill after this keeps the record."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO enrichments VALUES (?, ?, ?)",
                            (key, json.dumps(record, ensure_ascii=False), time.time()))
