"""The LLM path end to end with real parts: the real llama.cpp server (SmolLM2, through the
`openai` backend), the in-process `llamacpp` backend on the same GGUF, and `anthropic` against a
local server speaking the Messages API's streaming events (the one paid API, faked at its HTTP
boundary). SmolLM2's answers are poor: these tests check mechanics, not wording.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from pydantic import SecretStr

from rag.errors import ConfigError
from rag.events import Completed, Retrieved, TextDelta
from rag.factory import build_pipeline

from tests.conftest import free_port
from tests.llm_servers import FakeAnthropic, LlamaServer, SilentServer, llm_pipeline, smollm2_gguf

RLHF = "Compare what Askell and Amodei said about RLHF"
SYCOPHANCY = "What did Askell say about sycophancy?"


@pytest.fixture(scope="module")
def llama_server():
    server = LlamaServer(free_port()).start()
    yield server
    server.stop()


def assert_checked(answer) -> None:
    """Every citation names a passage that was given, and every one was checked."""
    assert answer.citations or answer.abstained or answer.fallback
    for citation in answer.citations:
        assert citation.passage in answer.passages
        assert isinstance(citation.supported, bool)
    assert all(isinstance(claim.supported, bool) for claim in answer.claims)


def test_openai_backend_streams_a_checked_answer_from_the_llama_server(pipeline, llama_server):
    pipe = llm_pipeline(pipeline, llm="openai", llm_base_url=llama_server.base_url)
    events = list(pipe.ask_stream(SYCOPHANCY))
    assert isinstance(events[0], Retrieved) and events[0].result.passages  # sources before any text
    assert isinstance(events[-1], Completed)
    deltas = [e for e in events if isinstance(e, TextDelta)]
    answer = events[-1].answer
    assert pipe.answerer.model.endswith(".gguf")  # the server's own model, discovered
    if answer.fallback is None and not answer.abstained:
        assert len(deltas) > 1 and answer.backend == "openai"
        assert "".join(d.text for d in deltas) == answer.text  # the stream was the verified text
    assert_checked(answer)


def test_done_when_command_and_fallback_when_the_server_is_gone(cli_env, pipeline):
    server = LlamaServer(free_port()).start()
    command = [sys.executable, "-m", "rag", "ask", RLHF, "--llm", "openai", "--base-url", server.base_url, "--json"]
    cli_env = {**cli_env, "RAG_LLM_MAX_TOKENS": "120"}
    try:
        live = subprocess.run(command, env=cli_env, capture_output=True, text=True, timeout=600)
    finally:
        server.stop()
    assert live.returncode == 0, live.stderr
    payload = json.loads(live.stdout)
    numbers = {c["n"] for c in payload["citations"]}
    assert all(isinstance(c["supported"], bool) for c in payload["citations"])
    assert numbers == set(range(1, len(numbers) + 1))  # valid passage numbers, in order of use
    assert "Traceback" not in live.stderr

    dead = subprocess.run(command, env=cli_env, capture_output=True, text=True, timeout=300)
    assert dead.returncode == 0, dead.stderr
    payload = json.loads(dead.stdout)
    assert payload["backend"] == "extractive" and "could not reach" in payload["fallback"]
    assert "RAG_LLM_BASE_URL" in payload["fallback"] and payload["citations"]
    assert "Traceback" not in dead.stderr


def test_a_timeout_falls_back_quickly(pipeline):
    with SilentServer() as silent:
        pipe = llm_pipeline(pipeline, llm="openai", llm_base_url=silent.base_url, llm_model="m",
                            llm_timeout=1.5, llm_max_retries=0, llm_query_expansion=True, llm_expansion_timeout=0.5)
        answer = pipe.ask(SYCOPHANCY)
    assert answer.query.translations == []  # the expansion gave up after 0.5 s; retrieval went on
    assert answer.fallback and "RAG_LLM_TIMEOUT" in answer.fallback
    assert answer.citations and not answer.abstained


def test_stopping_a_stream_closes_the_request(pipeline, llama_server):
    pipe = llm_pipeline(pipeline, llm="openai", llm_base_url=llama_server.base_url, llm_max_tokens=300)
    stream = pipe.ask_stream("Tell me everything Amodei said about scaling laws")
    for event in stream:
        if isinstance(event, TextDelta):
            break
    stream.close()  # the user pressed stop: the HTTP response is closed, nothing raises
    assert pipe.ask(SYCOPHANCY).citations  # and the server answers the next question


def test_llamacpp_backend_answers_in_process(pipeline):
    pipe = llm_pipeline(pipeline, llm="llamacpp", llm_model=str(smollm2_gguf()))
    answer = pipe.ask(SYCOPHANCY)
    assert pipe.answerer.model == smollm2_gguf().name
    assert answer.backend in ("llamacpp", "extractive")
    assert_checked(answer)


def test_anthropic_backend_with_checked_citations(pipeline):
    with FakeAnthropic() as fake:
        fake.replies = ["Askell says sycophancy means telling people what they want to hear [1]. "
                        "She also founded a bakery [2]. See also [7]."]
        pipe = llm_pipeline(pipeline, llm="anthropic", llm_model="claude-test", llm_base_url=fake.base_url,
                            llm_api_key=SecretStr(fake.api_key))
        answer = pipe.ask(SYCOPHANCY)
    request = fake.requests[0]
    assert request["path"] == "/v1/messages" and request["body"]["stream"] is True
    assert request["body"]["model"] == "claude-test"
    assert "<passages>" in json.dumps(request["body"]["messages"])
    assert answer.backend == "anthropic" and answer.fallback is None
    assert answer.invalid_citations == ["[7]"] and "[7]" not in answer.text
    assert [c.n for c in answer.citations] == [1, 2]
    assert [claim.supported for claim in answer.claims][1] is False  # the bakery is flagged
    assert_checked(answer)


def test_the_model_saying_not_covered_is_an_abstention(pipeline):
    with FakeAnthropic() as fake:
        fake.replies = ["NOT COVERED"]
        pipe = llm_pipeline(pipeline, llm="anthropic", llm_model="m", llm_base_url=fake.base_url,
                            llm_api_key=SecretStr(fake.api_key))
        answer = pipe.ask("What did Askell name her bicycle?")
    assert answer.abstained and answer.fallback is None and not answer.citations
    assert "don't cover" in answer.text


def test_an_answer_without_valid_citations_is_replaced_by_quotes(pipeline):
    with FakeAnthropic() as fake:
        fake.replies = ["Sycophancy is bad, everyone knows that. [42]"]
        pipe = llm_pipeline(pipeline, llm="anthropic", llm_model="m", llm_base_url=fake.base_url,
                            llm_api_key=SecretStr(fake.api_key))
        events = list(pipe.ask_stream(SYCOPHANCY))
    answer = events[-1].answer
    assert answer.backend == "extractive" and "cited none" in answer.fallback
    assert answer.citations and all(c.supported for c in answer.citations)
    assert any(isinstance(e, TextDelta) and e.replace for e in events)  # interfaces drop the draft


def test_the_api_key_never_appears_in_output_or_logs(pipeline, caplog):
    key = "sk-ant-very-secret-0123456789"
    with FakeAnthropic(api_key="another-key") as fake, caplog.at_level(logging.DEBUG):
        pipe = llm_pipeline(pipeline, llm="anthropic", llm_model="m", llm_base_url=fake.base_url,
                            llm_api_key=SecretStr(key))
        answer = pipe.ask(SYCOPHANCY)
    assert answer.fallback and "RAG_LLM_API_KEY" in answer.fallback
    assert key not in json.dumps(answer.to_json()) and key not in caplog.text
    assert key not in json.dumps(fake.requests[0]["body"])  # nor in the prompt


@pytest.mark.parametrize("overrides, setting", [
    ({"llm": "anthropic", "llm_model": "m"}, "ANTHROPIC_API_KEY"),
    ({"llm": "anthropic", "llm_api_key": SecretStr("k")}, "RAG_LLM_MODEL"),
    ({"llm": "openai"}, "RAG_LLM_BASE_URL"),
    ({"llm": "llamacpp", "llm_model": "/no/such/model.gguf"}, "RAG_LLM_MODEL"),
])
def test_misconfiguration_names_the_setting_at_start_up(pipeline, monkeypatch, overrides, setting):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match=setting):
        build_pipeline(pipeline.settings.model_copy(update=overrides))


def test_cli_reports_misconfiguration_in_one_line(cli_env):
    env = {**cli_env, "RAG_LLM": "anthropic", "RAG_LLM_MODEL": "m"}  # and no key
    env.pop("ANTHROPIC_API_KEY", None)
    done = subprocess.run([sys.executable, "-m", "rag", "ask", SYCOPHANCY], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "ANTHROPIC_API_KEY" in done.stderr and "Traceback" not in done.stderr


def test_doctor_checks_the_llm_backend(cli_env, llama_server):
    env = {**cli_env, "RAG_LLM": "openai", "RAG_LLM_BASE_URL": llama_server.base_url}
    live = subprocess.run([sys.executable, "-m", "rag", "doctor"], env=env, capture_output=True, text=True, timeout=300)
    assert "ok    llm backend is usable: LLM server" in live.stdout, live.stdout + live.stderr
    env["RAG_LLM_BASE_URL"] = f"http://127.0.0.1:{free_port()}/v1"
    dead = subprocess.run([sys.executable, "-m", "rag", "doctor"], env=env, capture_output=True, text=True, timeout=300)
    assert dead.returncode == 1 and "FAIL  llm backend is usable" in dead.stdout
    assert "RAG_LLM_BASE_URL" in dead.stdout and "Traceback" not in dead.stderr


def test_query_expansion_searches_the_translation_too(pipeline):
    translation = "阿斯克尔对阿谀奉承说了什么？"
    with FakeAnthropic() as fake:
        fake.replies = [translation, "Askell says models tell people what they want to hear [1]."]
        pipe = llm_pipeline(pipeline, llm="anthropic", llm_model="m", llm_base_url=fake.base_url,
                            llm_api_key=SecretStr(fake.api_key), llm_query_expansion=True)
        events = list(pipe.ask_stream(SYCOPHANCY))
        again = pipe.ask(SYCOPHANCY)  # cached: no second translation request
    retrieved = events[0]
    assert retrieved.query.translations == [translation]
    assert retrieved.to_json()["query"]["expanded_queries"] == [translation]
    assert "Chinese" in json.dumps(fake.requests[0]["body"], ensure_ascii=False)  # asked to translate
    assert len(fake.requests) == 3 and again.query.translations == [translation]
