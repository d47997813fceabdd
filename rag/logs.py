"""Logs as JSON lines on stderr, and one `request` line per question answered or searched.

An operator greps one line per request (id, interface, latency of each stage, backend, abstained,
fallback, status) instead of piecing a request together from scattered messages. The level comes
from `RAG_LOG_LEVEL`; servers default to info (every request logged), one-shot commands to
warning. Secrets (LLM key, Slack tokens, web password) are replaced in every line, whoever wrote it.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import datetime, timezone

from rag.errors import UserError
from rag.models import Answer, SearchResult
from rag.settings import Settings

REQUESTS = logging.getLogger("rag.requests")
# Slack token shapes, wherever they might turn up in a log line (slack_sdk logs headers at DEBUG)
TOKEN_PATTERN = re.compile(r"\b(xox[a-z]|xapp)-[0-9A-Za-z-]+")
SECRET_SETTINGS = ("llm_api_key", "slack_bot_token", "slack_app_token", "slack_signing_secret", "web_auth")


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


class JsonFormatter(logging.Formatter):
    """One JSON object per record (`fields` passed as `extra` are merged in), secrets redacted."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
                 **getattr(record, "fields", {})}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        text = TOKEN_PATTERN.sub(r"\1-[redacted]", json.dumps(entry, ensure_ascii=False, default=str))
        for secret in self.secrets:
            text = text.replace(json.dumps(secret)[1:-1], "[redacted]")
        return text


def configure_logging(settings: Settings, default_level: str = "warning") -> None:
    """JSON lines on stderr at `RAG_LOG_LEVEL` (else `default_level`), for the whole process."""
    secrets = [getattr(settings, name) for name in SECRET_SETTINGS]
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter([s.get_secret_value() for s in secrets if s]))
    logging.basicConfig(level=(settings.log_level or default_level).upper(), handlers=[handler], force=True)


class RequestLog:
    """Times one request and writes its line when the request ends, however it ends.

    Status: ok, refused (a `UserError`: bad input, empty index), cancelled (the reader stopped the
    stream: the web Stop button, a closed connection) or error (a bug; warning level).
    """

    def __init__(self, kind: str, interface: str, request_id: str | None = None):
        self.request_id = request_id or new_request_id()
        self.fields: dict = {"request_id": self.request_id, "kind": kind, "interface": interface}
        self.stages: dict[str, float] = {}
        self.started = time.perf_counter()
        self.finished = False  # a reader may stop iterating once it has the answer: not a cancel

    def searched(self, result: SearchResult, stages: dict[str, float]) -> None:
        self.stages.update(stages)
        self.fields.update(passages=len(result.passages), confidence=round(result.confidence, 3),
                           rewritten_by=result.plan.rewritten_by)

    def answered(self, answer: Answer) -> None:
        self.stages.update(answer.timings_ms)
        self.fields.update(backend=answer.backend, model=answer.model, abstained=answer.abstained,
                           fallback=answer.fallback, citations=len(answer.citations),
                           invalid_citations=len(answer.invalid_citations))
        self.finished = True

    def __enter__(self) -> RequestLog:
        return self

    def __exit__(self, kind, exc, traceback) -> None:
        stopped = kind is not None and issubclass(kind, GeneratorExit)
        status = ("ok" if kind is None or (stopped and self.finished) else "cancelled" if stopped
                  else "refused" if issubclass(kind, UserError) else "error")
        self.fields["status"] = status
        if status in ("refused", "error"):
            self.fields["error"] = str(exc) if status == "refused" else type(exc).__name__
        self.fields["latency_ms"] = {**{k: round(v, 1) for k, v in self.stages.items()},
                                     "total": round((time.perf_counter() - self.started) * 1000, 1)}
        REQUESTS.log(logging.WARNING if status == "error" else logging.INFO, "request",
                     extra={"fields": self.fields})
