"""What several bot processes must agree on, as files under `<data dir>/slack/`: which events
are already being answered (Slack retries an event it thinks went unanswered, possibly to another
replica behind the load balancer) and the answers the thumbs buttons rate (a vote may reach a
different process than the one that answered). Replicas that should agree share the data dir.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

EVENT_CLAIM_SECONDS = 3600  # Slack stops retrying an event within minutes
ANSWER_SECONDS = 30 * 24 * 3600  # how long an answer can still be rated
PRUNE_EVERY_SECONDS = 600
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class SharedState:
    def __init__(self, root: Path):
        self.events = root / "events"
        self.answers = root / "answers"
        for folder in (self.events, self.answers):
            folder.mkdir(parents=True, exist_ok=True)
        self._pruned = float("-inf")

    def claim_event(self, event_id: str) -> bool:
        """True for the first delivery of an event, False for every retry of it, across processes
        (an exclusive create is atomic on one file system)."""
        self._prune()
        if not _SAFE_ID.fullmatch(event_id or ""):
            return True  # nothing to deduplicate on; answering twice beats never
        try:
            os.close(os.open(self.events / event_id, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def save_answer(self, answer_id: str, record: dict) -> None:
        path = self.answers / f"{answer_id}.json"
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        os.replace(partial, path)  # a reader never sees half a record

    def load_answer(self, answer_id: str) -> dict | None:
        """The record saved under an id a button carried; None when unknown, expired or not an id."""
        if not _SAFE_ID.fullmatch(answer_id or ""):
            return None
        try:
            return json.loads((self.answers / f"{answer_id}.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def _prune(self) -> None:
        if time.monotonic() - self._pruned < PRUNE_EVERY_SECONDS:
            return
        self._pruned = time.monotonic()
        now = time.time()
        for folder, max_age in ((self.events, EVENT_CLAIM_SECONDS), (self.answers, ANSWER_SECONDS)):
            for path in folder.iterdir():
                try:
                    if now - path.stat().st_mtime > max_age:
                        path.unlink()
                except FileNotFoundError:  # another replica pruned it first
                    pass
