"""The bad-question catalogue at the Python API and the CLI (the web API and the Slack handler
run the same table in test_ui.py and test_slack.py): a clear message or a cleaned question,
never a crash, and one log line per request saying how it ended."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from rag.errors import UserError
from tests.bad_questions import ALL_CASES, PLAIN, BadQuestion, ids
from tests.test_cli import rag
from tests.test_logs import request_lines


@pytest.mark.parametrize("case", ALL_CASES, ids=ids(ALL_CASES))
def test_python_api_refuses_clearly_or_answers_the_cleaned_question(pipeline, caplog, case: BadQuestion):
    with caplog.at_level(logging.INFO, logger="rag.requests"):
        if case.refusal:
            with pytest.raises(UserError, match=case.refusal):
                pipeline.ask(case.question, **case.options)
        else:
            answer = pipeline.ask(case.question, **case.options)
            assert not answer.abstained and answer.citations
            assert any(c.passage.chunk.speaker == "Amanda Askell" for c in answer.citations)
    [line] = request_lines(caplog)
    assert line["status"] == ("refused" if case.refusal else "ok")
    assert pipeline.ask(PLAIN).citations  # the pipeline is still fine


def test_cli_batch_answers_every_line_it_can_and_names_the_rest(cli_env):
    lines = ["why " * 25_000, "What did Askell\x1b[31m say about sycophancy?\x07", PLAIN]
    stdin = ("\n".join(lines) + "\n").encode() + b"What did Askell \xed\xa0\x80\xff say about sycophancy?\n"
    out = subprocess.run([sys.executable, "-m", "rag", "ask", "-", "--json"], env=cli_env, input=stdin,
                         capture_output=True, timeout=300)  # bytes: the last line is not UTF-8
    payloads = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert out.returncode == 1 and len(payloads) == 4, out.stderr  # 1: one line was refused
    assert "please keep it under 2,000" in payloads[0]["error"]
    assert all(p["citations"] and not p["abstained"] for p in payloads[1:])
    assert b"Traceback" not in out.stderr


@pytest.mark.parametrize("args, code, message", [
    (["ask", "", "--json"], 1, "The question is empty."),
    (["ask", PLAIN, "-k", "0"], 2, "0 is not in the range 1<=x<=50"),
    (["ask", PLAIN, "--speaker", "Nobody Atall"], 1, "Unknown speaker"),
])
def test_cli_bad_arguments_exit_with_a_message(cli_env, args, code, message):
    out = rag(args, cli_env)
    assert out.returncode == code and message in out.stdout + out.stderr and "Traceback" not in out.stderr
