"""`rag ingest --enrich`: English gists and questions for Chinese chunks, written once by the LLM,
stored by content, attached on every ingest, searched densely and lexically, shown as `gist`.

Real parts throughout, over a small private corpus (four Chinese chunks, one English): the real
llama.cpp server with SmolLM2 (an English-only model: mechanics, not wording), a server that
never answers (timeouts), and scripted replies at the Messages API's HTTP boundary where a test
needs to know what was written.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import SecretStr

from rag.ingest.chunking import current_id
from rag.ingest.enrichment import GIVE_UP_AFTER, content_key
from rag.factory import build_pipeline
from rag.lexicon import tokenize
from rag.models import Chunk, Passage
from rag.settings import Settings
from slackbot.blocks import source_line
from ui.render import passage_card

from tests.conftest import free_port
from tests.llm_servers import FakeAnthropic, LlamaServer, SilentServer

CHINESE = """\
# 访谈

**阿曼达：** 谄媚就是告诉人们他们想听的话，而不是真相。我们希望Claude诚实。

**Lex：** 那斑马鱼呢？

**克里斯：** 斑马鱼的大脑很小，但是研究它们可以帮助我们理解神经网络。

**阿曼达：** 角色训练让模型有好奇心，也让它尊重用户的自主。

**克里斯：** 可解释性就像生物学，神经网络是长出来的，不是造出来的。
"""
ENGLISH = "Alice: Honesty matters more than flattery.\n\nBob: Why?\n\nAlice: Because trust is earned.\n"
CHUNKS = 6  # four Chinese, two English
WORDS = ["zebrafish", "marmalade", "tambourine", "lighthouse", "origami"]


def reply(n: int) -> str:
    """A well-formed enrichment naming one made-up topic, so a search can find what was written."""
    word = WORDS[n]
    return (f"Gist: The speaker explains why {word} matters for Claude.\n"
            f"Q: Why does the {word} matter to Claude?\nQ: What did they say about {word}?")


@pytest.fixture
def talks(tmp_path: Path) -> tuple[Path, Settings]:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "zh.md").write_text(CHINESE, encoding="utf-8")
    (corpus / "en.md").write_text(ENGLISH, encoding="utf-8")
    return corpus, Settings(data_dir=tmp_path / "data", corpus=[corpus])


def with_fake(settings: Settings, fake: FakeAnthropic, **more):
    return build_pipeline(settings.model_copy(update={
        "llm": "anthropic", "llm_model": "m", "llm_base_url": fake.base_url, "llm_api_key": SecretStr(fake.api_key),
        "llm_enrich_timeout": 120, **more}))  # the first call imports the client: slow on busy cores


def chinese(pipe) -> list[Chunk]:
    return sorted((c for c in pipe.index.chunks.values() if c.language == "zh"), key=lambda c: c.char_start)


def test_enrichment_is_written_once_stored_by_content_and_searched_on_both_sides(talks):
    corpus, settings = talks
    plain = build_pipeline(settings)  # no LLM
    plain.ingest(show_progress=False)
    question = "Why does the zebrafish matter to Claude?"
    before = dict(plain.index.nearest(plain.embedder.encode_query(question)[None], 10)[0])

    with FakeAnthropic() as fake:
        fake.replies = [reply(n) for n in range(4)]
        pipe = with_fake(settings, fake)
        report = pipe.ingest(enrich=True, show_progress=False)
        enriched = chinese(pipe)
        assert len(enriched) == 4 and len(pipe.index.chunks) == CHUNKS
        assert len(fake.requests) == 4 and report.enrichment.written == 4
        assert "4 written now" in report.summary()
        assert all(c.gist.startswith("The speaker explains") and len(c.questions) == 2 for c in enriched)
        assert not any(c.gist for c in pipe.index.chunks.values() if c.language == "en")
        stored = pipe.index.enrichments.get([content_key(c) for c in enriched])
        assert len(stored) == 4 and {r["model"] for r in stored.values()} == {"m"}
        assert any("谄媚" in json.dumps(r["body"], ensure_ascii=False) for r in fake.requests)  # the chunks' own text

        target = next(c for c in enriched if "zebrafish" in c.gist)
        # lexical: the enrichment's own BM25 index
        scores = pipe.index.enriched.scores(dict.fromkeys(tokenize("zebrafish"), 1.0))
        assert pipe.index.enriched.ids[int(scores.argmax())] == target.id and scores.max() > 0
        # dense: the question, embedded on its own, now scores for its chunk
        after = dict(pipe.index.nearest(pipe.embedder.encode_query(question)[None], 10)[0])
        assert max(after, key=after.get) == target.id
        assert after[target.id] > before[current_id(replace(target, gist="", questions=()))] + 0.03
        # end to end, and the gist in the JSON contract
        found = plain.search(question)
        assert found.passages[0].chunk.id == target.id and found.passages[0].to_json()["gist"] == target.gist
        answer = plain.ask(question).to_json()
        assert any(c["gist"] == target.gist for c in answer["citations"])
        assert all(p["gist"] is None for p in answer["passages"] if p["language"] == "en")

        # re-ingest, with or without an LLM: the stored enrichments come back, nothing is asked or embedded
        again = plain.ingest(show_progress=False)
        assert again.added == again.removed == 0 and again.enrichment.reused == 4
        assert pipe.ingest(enrich=True, show_progress=False).added == 0 and len(fake.requests) == 4

        # a changed chunk (the last turn: no other chunk quotes it as context) is written again
        (corpus / "zh.md").write_text(CHINESE.replace("就像生物学", "就像植物学"), encoding="utf-8")
        fake.replies = [reply(4)]
        changed = pipe.ingest(enrich=True, show_progress=False)
    assert len(fake.requests) == 5 and changed.enrichment.written == 1 and changed.enrichment.reused == 3
    assert changed.added == changed.removed == 1
    renewed = next(c for c in chinese(pipe) if "植物学" in c.text)
    assert "origami" in renewed.gist
    assert {c.id for c in chinese(pipe)} - {renewed.id} == {c.id for c in enriched if "生物学" not in c.text}


def test_a_failed_chunk_is_indexed_without_and_written_on_the_next_run(talks):
    _, settings = talks
    with FakeAnthropic() as fake:
        fake.replies = ["I am sorry, I can only help with English.", reply(1), reply(2), reply(3)]
        pipe = with_fake(settings, fake)
        first = pipe.ingest(enrich=True, show_progress=False)
        assert first.enrichment.failed == 1 and first.enrichment.written == 3 and not first.errors
        assert "1 failed (indexed without, tried again next time)" in first.summary()
        assert len(pipe.index.chunks) == CHUNKS and sum(not c.gist for c in chinese(pipe)) == 1

        fake.replies = [reply(0)]
        second = pipe.ingest(enrich=True, show_progress=False)
    assert len(fake.requests) == 5  # only the failed chunk was asked again
    assert second.enrichment.written == 1 and second.enrichment.reused == 3
    assert all(c.gist for c in chinese(pipe))


def test_a_silent_server_costs_one_timeout_per_chunk_and_gives_up_the_rest_for_the_next_run(talks):
    _, settings = talks
    with SilentServer() as silent:
        pipe = build_pipeline(settings.model_copy(update={
            "llm": "openai", "llm_base_url": silent.base_url, "llm_model": "m", "llm_timeout": 1.5,
            "llm_max_retries": 0, "llm_enrich_timeout": 0.5}))
        started = time.perf_counter()
        report = pipe.ingest(enrich=True, show_progress=False)
        took = time.perf_counter() - started
    assert report.enrichment.failed == GIVE_UP_AFTER < 4 and report.enrichment.without == 4
    assert "RAG_LLM_ENRICH_TIMEOUT" in report.enrichment.stopped and "rag ingest --enrich" in report.summary()
    assert len(pipe.index.chunks) == CHUNKS and not any(c.gist for c in pipe.index.chunks.values())  # indexed all the same
    assert took < 60


def env_for(settings: Settings, **more: str) -> dict[str, str]:
    return {**os.environ, "RAG_DATA_DIR": str(settings.data_dir), "RAG_CORPUS": json.dumps([str(p) for p in settings.corpus]),
            **more}


def test_an_interrupted_enrich_keeps_what_it_wrote_and_the_published_index(talks):
    _, settings = talks
    plain = build_pipeline(settings)
    plain.ingest(show_progress=False)
    published = plain.index.version.name
    store = settings.data_dir / "enrichments.sqlite"
    with FakeAnthropic() as fake:
        fake.replies = [reply(n) for n in range(4)]
        fake.pause = 0.15  # about 3 s a reply: time to interrupt the second
        env = env_for(settings, RAG_LLM="anthropic", RAG_LLM_MODEL="m", RAG_LLM_BASE_URL=fake.base_url,
                      RAG_LLM_API_KEY=fake.api_key)
        # Ctrl-C's signal, with its default handling even when pytest runs as a background job
        # (which starts children with SIGINT ignored)
        run = subprocess.Popen([sys.executable, "-m", "rag", "ingest", "--enrich", "--quiet"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not _stored(store):
            time.sleep(0.2)
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=120)
    assert run.returncode != 0, stderr
    kept = _stored(store)
    assert 1 <= kept < 4
    assert build_pipeline(settings).index.version.name == published  # nothing half-done was published
    resumed = plain.ingest(show_progress=False)  # no LLM: what was written is indexed now
    assert resumed.enrichment.reused == kept == sum(bool(c.gist) for c in chinese(plain))


def _stored(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM enrichments").fetchone()[0]
        except sqlite3.OperationalError:  # not created yet
            return 0


def test_enrich_without_an_llm_is_refused_with_what_to_set(talks):
    _, settings = talks
    done = subprocess.run([sys.executable, "-m", "rag", "ingest", "--enrich"], env=env_for(settings, RAG_LLM="extractive"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "RAG_LLM" in done.stderr and "--llm openai" in done.stderr
    assert "indexed" not in done.stdout


def test_the_real_server_enriches_through_the_cli_and_every_chunk_is_indexed(talks):
    _, settings = talks
    server = LlamaServer(free_port()).start()
    try:
        done = subprocess.run([sys.executable, "-m", "rag", "ingest", "--enrich", "--quiet", "--llm", "openai",
                               "--base-url", server.base_url], env=env_for(settings), capture_output=True, text=True,
                              timeout=900)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    written = int(re.search(r"enrichment: (\d+) written now", done.stdout).group(1))
    failed = int(m.group(1)) if (m := re.search(r"(\d+) failed", done.stdout)) else 0
    pipe = build_pipeline(settings)
    zh = chinese(pipe)
    assert len(pipe.index.chunks) == CHUNKS and written + failed == 4 == len(zh)
    enriched = [c for c in zh if c.gist or c.questions]
    assert len(enriched) == written == len(pipe.index.enrichments.get([content_key(c) for c in zh]))
    assert all(re.search("[A-Za-z]", t) for c in enriched for t in (c.gist, *c.questions) if t)


def test_the_gist_is_shown_to_readers_of_another_language():
    chunk = Chunk(id="c", source="zh.md", title="访谈", speaker="Amanda Askell", subject="Amanda Askell", language="zh",
                  section=None, text="谄媚就是告诉人们他们想听的话。", char_start=0, char_end=15, turn_index=0,
                  gist="Askell says sycophancy is telling people what they <want> to hear.")
    passage = Passage(chunk, 1.0, 1)
    assert "In short: Askell says sycophancy" in passage_card(passage, "a", "[1]", "en", ([], []))
    assert "In short" not in passage_card(passage, "a", "[1]", "zh", ([], []))
    citation = {"n": 1, **passage.to_json()}
    assert "_In short: Askell says" in source_line(citation, "en") and "&lt;want&gt;" in source_line(citation, "en")
    assert "In short" not in source_line(citation, "zh")
