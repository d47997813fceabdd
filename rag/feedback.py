"""Thumbs up/down on answers, from any interface, appended to one JSON Lines file.

`<data dir>/feedback.jsonl` gets one object per vote: when, where from, the vote and comment,
the question (and the conversation before it), the answer, its citations and the settings that
made it (never a secret). Appends are whole lines under an exclusive lock, so the web app and
the Slack bot can write from separate processes. `rag eval` turns the file into regression
cases.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from rag.errors import UserError
from rag.settings import Settings

FEEDBACK_FILE = "feedback.jsonl"
MAX_COMMENT_CHARS = 2000


def feedback_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / FEEDBACK_FILE


def settings_in_use(settings: Settings) -> dict:
    """What made an answer, without secrets: backend, model, server, k, embedder."""
    return {"llm": settings.llm, "llm_model": settings.llm_model, "llm_base_url": settings.llm_base_url,
            "top_k": settings.top_k, "embedder": settings.embedder, "min_confidence": settings.min_confidence}


def record_feedback(settings: Settings, *, interface: str, vote: str, answer: dict, comment: str = "",
                    history: list[dict] | None = None, user: str | None = None) -> dict:
    """Append one vote; `answer` is `Answer.to_json()`. Returns the stored entry."""
    if vote not in ("up", "down"):
        raise UserError(f"A vote is 'up' or 'down', not {vote!r}.")
    entry = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "interface": interface,
        "vote": vote,
        "comment": (comment or "").strip()[:MAX_COMMENT_CHARS],
        "user": user,
        "question": answer.get("question"),
        "history": history or [],
        "answer": answer.get("answer"),
        "abstained": answer.get("abstained"),
        "fallback": answer.get("fallback"),
        "backend": answer.get("backend"),
        "query": answer.get("query"),
        "citations": [{k: c.get(k) for k in ("n", "source", "char_start", "char_end", "speaker", "text", "supported")}
                      for c in answer.get("citations", [])],
        "settings": settings_in_use(settings),
    }
    path = feedback_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
    with open(path, "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # one whole line per writer, across processes
        try:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return entry


def read_feedback(path: Path) -> list[dict]:
    """Every vote in a feedback file; a torn or foreign line is skipped, not fatal."""
    entries = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("vote") in ("up", "down"):
            entries.append(entry)
    return entries
