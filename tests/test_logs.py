"""One structured log line per request, whatever its end; secrets never in a line; level from settings."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import SecretStr

from rag.errors import UserError
from rag.logs import JsonFormatter, configure_logging
from rag.settings import Settings
from tests.bad_questions import PLAIN
from tests.test_cli import rag

SECRET = "0123456789abcdef0123456789abcdef"
BOT_TOKEN = "xoxb-1-2-abcdef"


def request_lines(caplog) -> list[dict]:
    return [record.fields for record in caplog.records if record.name == "rag.requests"]


def test_an_answer_logs_one_line_with_its_stages_and_the_id_it_carries(pipeline, caplog):
    with caplog.at_level(logging.INFO, logger="rag.requests"):
        answer = pipeline.ask(PLAIN, interface="web")
    [line] = request_lines(caplog)
    assert line["request_id"] == answer.request_id and len(answer.request_id) == 12
    assert (line["kind"], line["interface"], line["status"]) == ("ask", "web", "ok")
    assert (line["backend"], line["abstained"], line["fallback"]) == ("extractive", False, None)
    assert line["citations"] == len(answer.citations) > 0
    stages = line["latency_ms"]
    assert {"condense", "expansion", "retrieval", "answer", "total"} <= stages.keys()
    assert stages["total"] >= stages["retrieval"] > 0


def test_searches_refusals_stopped_streams_and_bugs_each_log_how_they_ended(pipeline, caplog, monkeypatch):
    with caplog.at_level(logging.INFO, logger="rag.requests"):
        pipeline.search(PLAIN, request_id="given-id")
        with pytest.raises(UserError):
            pipeline.ask("   ")
        stream = pipeline.ask_stream(PLAIN)
        next(stream)  # the reader stops after the passages (the web Stop button, a closed connection)
        stream.close()
        monkeypatch.setattr(pipeline.retriever, "search", lambda *a: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            pipeline.ask(PLAIN)
    search, refused, cancelled, bug = request_lines(caplog)
    assert (search["kind"], search["request_id"], search["status"]) == ("search", "given-id", "ok")
    assert (refused["status"], refused["error"]) == ("refused", "The question is empty.")
    assert cancelled["status"] == "cancelled" and "answer" not in cancelled["latency_ms"]
    assert (bug["status"], bug["error"]) == ("error", "ZeroDivisionError")
    assert [r.levelname for r in caplog.records if r.name == "rag.requests"] == ["INFO"] * 3 + ["WARNING"]


@pytest.fixture
def root_logger():
    """The root logger as it was before the test configured it (pytest's capture lives there)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:], root.level = handlers, level


def test_a_line_is_json_and_never_shows_a_token_key_or_password(root_logger):
    settings = Settings(llm_api_key=SecretStr("sk-live-key"), slack_signing_secret=SecretStr(SECRET),
                        web_auth=SecretStr("ann:hunter2-pass"), log_level="debug")
    configure_logging(settings, "info")
    assert root_logger.level == logging.DEBUG  # the setting wins over the command's default
    formatter = root_logger.handlers[0].formatter
    assert isinstance(formatter, JsonFormatter)
    record = logging.LogRecord("slack", logging.ERROR, __file__, 1, "auth %s %s %s %s; app %s",
                               (BOT_TOKEN, SECRET, "sk-live-key", "ann:hunter2-pass", "xapp-1-A1-123-abc"), None)
    line = json.loads(formatter.format(record))
    assert line["msg"] == "auth xoxb-[redacted] [redacted] [redacted] [redacted]; app xapp-[redacted]"
    assert line["level"] == "error" and line["logger"] == "slack"


def test_the_cli_logs_requests_at_the_level_settings_give(cli_env):
    quiet = rag(["ask", PLAIN, "--json"], cli_env)
    assert quiet.returncode == 0 and '"rag.requests"' not in quiet.stderr  # one-shot commands: warnings only
    loud = rag(["ask", PLAIN, "--json"], {**cli_env, "RAG_LOG_LEVEL": "info"})
    [line] = [json.loads(x) for x in loud.stderr.splitlines() if '"rag.requests"' in x]
    assert line["request_id"] == json.loads(loud.stdout)["request_id"] and line["interface"] == "cli"
