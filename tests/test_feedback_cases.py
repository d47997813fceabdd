"""`rag eval feedback`: votes become regression cases that replay through the real pipeline."""

from __future__ import annotations

import json

from click.testing import CliRunner

from eval.cli import eval_group
from eval.feedback_cases import cases_from_feedback, replay
from rag.feedback import feedback_path, read_feedback, record_feedback
from rag.settings import Settings

ASKELL = "What did Askell say about sycophancy?"


def test_votes_become_cases_that_replay(pipeline, tmp_path, monkeypatch):
    settings = Settings(data_dir=tmp_path)
    good = pipeline.ask(ASKELL).to_json()
    off_topic = pipeline.ask("What is the capital of Peru?").to_json()
    record_feedback(settings, interface="web", vote="down", answer=good, comment="first thought")
    record_feedback(settings, interface="web", vote="up", answer=good)  # the latest vote on it wins
    record_feedback(settings, interface="slack", vote="down", answer=off_topic, comment="should answer")

    cases = cases_from_feedback(read_feedback(feedback_path(settings)))
    assert [(c.question, c.vote) for c in cases] == [(ASKELL, "up"), ("What is the capital of Peru?", "down")]
    assert cases[0].cited and not cases[0].abstained and cases[1].abstained
    results = replay(pipeline, cases)
    assert [r["passed"] for r in results] == [True, False]  # kept its sources; still abstains

    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(eval_group, ["feedback", "--no-replay"])
    assert result.exit_code == 0, result.output
    assert "2 regression cases (1 up, 1 down)" in result.output
    written = [json.loads(line) for line in (tmp_path / "feedback-cases.jsonl").read_text().splitlines()]
    assert [w["id"] for w in written] == [c.id for c in cases]


def test_no_feedback_yet_is_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(eval_group, ["feedback"])
    assert result.exit_code == 1 and "No feedback yet" in result.output
