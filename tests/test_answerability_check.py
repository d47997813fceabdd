"""The LLM answerability check before answering: mechanics with real parts (the llama.cpp
server with SmolLM2, whose verdicts are poor, so not their quality), a server that never
answers (the timeout falls back to retrieval's decision), and scripted verdicts at the
Messages API's HTTP boundary (a "no" abstains with the usual not-covered answer)."""

from __future__ import annotations

import json
import subprocess
import sys

from pydantic import SecretStr

from tests.conftest import free_port
from tests.llm_servers import FakeAnthropic, LlamaServer, SilentServer, llm_pipeline

SYCOPHANCY = "What did Askell say about sycophancy?"


def test_the_check_reads_the_passages_on_the_real_server_and_reports_its_verdict(cli_env):
    server = LlamaServer(free_port()).start()
    try:
        command = [sys.executable, "-m", "rag", "ask", SYCOPHANCY, "--llm", "openai", "--base-url",
                   server.base_url, "--json"]
        env = {**cli_env, "RAG_LLM_ANSWERABILITY_CHECK": "true", "RAG_LLM_QUERY_EXPANSION": "false",
               "RAG_LLM_MAX_TOKENS": "60"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    check = payload["check"]
    assert check["states_answer"] in (True, False, None) and check["ms"] > 0
    assert (check["fallback"] is None) == (check["states_answer"] is not None)
    assert payload["timings_ms"]["check"] > 0
    if check["states_answer"] is False:
        assert payload["abstained"] and not payload["citations"]


def test_a_slow_check_falls_back_to_the_offline_decision(pipeline):
    with SilentServer() as silent:
        pipe = llm_pipeline(pipeline, llm="openai", llm_base_url=silent.base_url, llm_model="m", llm_timeout=1.5,
                            llm_max_retries=0, llm_answerability_check=True, llm_check_timeout=0.5)
        answer = pipe.ask(SYCOPHANCY)
    assert answer.check["states_answer"] is None and "RAG_LLM_CHECK_TIMEOUT" in answer.check["fallback"]
    assert 400 < answer.check["ms"] < 1500
    assert not answer.abstained and answer.citations  # retrieval's decision stood; quotes answered


def test_no_abstains_with_the_not_covered_answer_and_yes_answers(pipeline):
    with FakeAnthropic() as fake:
        fake.replies = ["No.", "yes", "Askell says models tell people what they want to hear [1]."]
        pipe = llm_pipeline(pipeline, llm="anthropic", llm_model="m", llm_base_url=fake.base_url,
                            llm_api_key=SecretStr(fake.api_key), llm_answerability_check=True,
                            llm_check_timeout=120)  # the first call imports the client: slow on busy cores
        refused = pipe.ask("What did Askell name her bicycle?")
        answered = pipe.ask(SYCOPHANCY)
    assert refused.abstained and "don't cover" in refused.text and refused.check["states_answer"] is False
    assert not refused.citations and len(fake.requests) == 3  # no answer was asked for after the "no"
    assert "Excerpts" in json.dumps(fake.requests[0]["body"], ensure_ascii=False)
    assert answered.check["states_answer"] is True and not answered.abstained and answered.citations
