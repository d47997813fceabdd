"""The eval's building blocks on hand-made cases with known answers: span overlap, ranks, each
metric at zero, partial and perfect, claim splitting, the judge's lexical side and calibration,
question-file validation, filters, and the run-to-run comparison. No index needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eval.dataset import (
    DEFAULT_QUESTIONS, DatasetError, Question, chinese_only_files, load_questions, parse_filters, select,
)
from eval.judge import DEFAULT_LABELS, _fit, load_labels
from eval.metrics import (
    GoldSpan, aggregate, citation_precision, citation_recall, first_hit_rank, hit_at, key_fact_coverage,
    passage_matches, percentile, reciprocal_rank, spans_overlap,
)
from eval.report import compare_runs, quality_metrics, threshold_names
from eval.run import score
from rag.answer.citations import answer_body
from rag.answer.citations import split_claims as split_any_claims
from rag.prompts import framing_phrases
from rag.settings import BUNDLED_CORPUS
from rag.answer.support import Bridge, _glossary_phrases, containment, windows

DARIO = "002_536a685dcacd8e2b.txt"
AMANDA_BILINGUAL = "001_b20dc5de5308e2ee.txt"


def passage(source: str, start: int, end: int) -> dict:
    return {"source": source, "char_start": start, "char_end": end}


# ---------------------------------------------------------------------------- overlap and ranks

@pytest.mark.parametrize("a, b, expected", [
    ((0, 10), (5, 15), True),      # partial overlap
    ((5, 15), (0, 10), True),      # symmetric
    ((0, 100), (40, 60), True),    # containment
    ((40, 60), (0, 100), True),
    ((0, 5), (5, 9), False),       # touching spans share no character
    ((5, 9), (0, 5), False),
    ((0, 5), (6, 9), False),       # disjoint
    ((4, 6), (5, 6), True),        # one shared character
    ((5, 5), (0, 10), False),      # an empty span overlaps nothing
    ((0, 10), (7, 7), False),
])
def test_spans_overlap(a, b, expected):
    assert spans_overlap(*a, *b) is expected


def test_passage_matches_needs_same_source_and_overlap():
    gold = [GoldSpan(DARIO, 100, 130)]
    assert passage_matches(passage(DARIO, 120, 400), gold)
    assert not passage_matches(passage(AMANDA_BILINGUAL, 120, 400), gold)  # same offsets, other file
    assert not passage_matches(passage(DARIO, 130, 400), gold)  # starts where gold ends
    assert not passage_matches(passage(DARIO, 0, 100), gold)  # ends where gold starts


def test_first_hit_rank_hit_and_reciprocal_rank():
    gold = [GoldSpan(DARIO, 1000, 1010), GoldSpan("003_aeea49b3ec2bf58a.txt", 50, 60)]
    ranked = [passage(DARIO, 0, 500), passage(DARIO, 500, 1000), passage("003_aeea49b3ec2bf58a.txt", 55, 90),
              passage(DARIO, 1005, 1200)]
    assert first_hit_rank(ranked, gold) == 3
    assert first_hit_rank(ranked[:2], gold) is None
    assert first_hit_rank([], gold) is None
    assert hit_at(3, 1) == 0.0 and hit_at(3, 3) == 1.0 and hit_at(3, 5) == 1.0 and hit_at(None, 5) == 0.0
    assert reciprocal_rank(1) == 1.0
    assert reciprocal_rank(4) == 0.25
    assert reciprocal_rank(None) == 0.0
    assert reciprocal_rank(11, cutoff=10) == 0.0


def test_ratio_metrics_zero_partial_perfect_and_empty():
    assert citation_precision([True, True, True]) == 1.0
    assert citation_precision([False, False]) == 0.0
    assert citation_precision([True, False, False, True]) == 0.5
    assert citation_precision([]) is None  # nothing cited: not measurable, not zero
    assert citation_recall(True) == 1.0 and citation_recall(False) == 0.0
    assert key_fact_coverage([True, False, False]) == pytest.approx(1 / 3)
    assert key_fact_coverage([]) is None


def test_percentile_and_aggregate():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 95) == 95.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    rows = [{"a": 1.0, "b": None}, {"a": 0.0, "b": 0.5}, {"a": 0.5, "b": None}]
    agg = aggregate(rows, ["a", "b", "c"])
    assert agg["a"].value == 0.5 and agg["a"].n == 3
    assert agg["b"].value == 0.5 and agg["b"].n == 1  # None = does not apply, not zero
    assert agg["c"].value is None and agg["c"].n == 0


# ---------------------------------------------------------------------------- per-question scores

def question(answerable: bool = True, key_facts: list[str] | None = None) -> Question:
    return Question(
        id="t1", question="q", language="en", answerable=answerable,
        type="factual" if answerable else "unanswerable", expected_speaker=None, gold=[],
        reference_answer="ref" if answerable else "", key_facts=key_facts if key_facts is not None else ["f1", "f2"],
        split="dev")


def record(first_hit, deep_hit, abstained: bool, citations=(), claims=(), facts=()) -> dict:
    return {"first_hit": first_hit, "first_hit_deep": deep_hit, "confidence": 0.7, "low_confidence": False,
            "answer": {"text": "…", "abstained": abstained},
            "citations": [{"gold": g, "correct": c} for g, c in citations],
            "claims": [{"supported": s} for s in claims],
            "key_facts": [{"supported": s} for s in facts], "answer_similarity": 0.9}


def test_score_perfect_answer():
    s = score(question(), record(1, 1, False, [(True, True), (True, True)], [True, True], [True, True]), k=5)
    assert s == {"hit@1": 1.0, "hit@5": 1.0, "mrr@10": 1.0, "low_confidence": 0.0, "citation_precision": 1.0,
                 "citation_recall": 1.0, "faithfulness": 1.0, "key_fact_coverage": 1.0, "answer_similarity": 0.9,
                 "abstention": None, "false_abstention": 0.0}


def test_score_everything_wrong():
    s = score(question(), record(None, None, False, [(False, False)], [False, False], [False, False]), k=5)
    assert (s["hit@1"], s["hit@5"], s["mrr@10"]) == (0.0, 0.0, 0.0)
    assert (s["citation_precision"], s["citation_recall"], s["faithfulness"], s["key_fact_coverage"]) == (0, 0, 0, 0)


def test_score_partial_and_judged_citation():
    # gold at rank 4 of 10, outside the top 3; one gold citation, one judged supporting, one wrong
    s = score(question(), record(None, 4, False, [(True, True), (False, True), (False, False)], [True, False],
                                 [True, False]), k=3)
    assert s["hit@3"] == 0.0 and s["mrr@10"] == 0.25
    assert s["citation_precision"] == pytest.approx(2 / 3)
    assert s["citation_recall"] == 1.0 and s["faithfulness"] == 0.5 and s["key_fact_coverage"] == 0.5


def test_score_abstentions():
    false_abstention = score(question(), record(1, 1, True, facts=[False, False]), k=5)
    assert false_abstention["false_abstention"] == 1.0 and false_abstention["abstention"] is None
    assert false_abstention["faithfulness"] is None and false_abstention["citation_recall"] == 0.0
    correct = score(question(answerable=False, key_facts=[]), record(None, None, True), k=5)
    assert correct["abstention"] == 1.0 and correct["false_abstention"] is None
    assert correct["hit@1"] is None and correct["mrr@10"] is None and correct["citation_recall"] is None
    answered = score(question(answerable=False, key_facts=[]), record(None, None, False, claims=[True]), k=5)
    assert answered["abstention"] == 0.0


# ---------------------------------------------------------------------------- claims

EXTRACTIVE = """Here is what the interviews say:
- Dario Amodei: “我是在2014年末加入百度，与吴恩达一起工作时第一次接触AI领域。” [1]
- An editorial summary: “内容导读 ：
阿莫迪认为，增加模型规模、数据量和计算力，能够持续提升AI模型的性能。” [2]
- A video narrator summarising Chris Olah: “他把神经网络比喻成是“培养”出来的” [3]
(Quotes from the Chinese sources are shown as written.)"""


def split_claims(answer: str):
    return split_any_claims(answer, framing_phrases())


def test_split_claims_on_extractive_answer():
    claims = split_claims(EXTRACTIVE)
    assert [c.cited for c in claims] == [[1], [2], [3]]  # intro and note are framing
    assert claims[0].text == "我是在2014年末加入百度，与吴恩达一起工作时第一次接触AI领域。"
    assert claims[1].text.startswith("内容导读 ：\n阿莫迪认为")  # a quote running over two lines
    assert claims[2].text == "他把神经网络比喻成是“培养”出来的"  # inner quotation marks kept
    body = answer_body(EXTRACTIVE, framing_phrases())
    assert "Here is what" not in body and "[1]" not in body


def test_split_claims_on_prose():
    claims = split_claims("Dario joined Baidu in late 2014 [1]. He worked on speech recognition. "
                          "It later became his focus [2].\nThis sentence cites nothing.")
    assert [c.cited for c in claims] == [[1], [2], [2], []]
    assert split_claims("The interviews don't cover that. I found no passage that answers it, so I won't guess.") == []


# ---------------------------------------------------------------------------- judge (lexical side)

def test_containment_plain_and_bridged():
    evidence = "我是在2014年末加入百度，与吴恩达一起工作时第一次接触AI领域"
    assert containment(evidence, evidence) == 1.0
    assert containment("完全无关的句子", evidence) == 0.0
    assert containment("", evidence) == 0.0
    assert containment("worked with Andrew Ng", evidence) == 0.0  # no shared units without a bridge
    bridge = Bridge(words={"work": ["工作"]}, phrases={("andrew", "ng"): ["吴恩达"]})
    assert containment("worked with Andrew Ng", evidence, bridge) == 1.0  # worked → work → 工作
    assert containment("worked at Google", evidence, bridge) == 0.5
    assert containment("Andrew", evidence, bridge) == 0.0  # half a phrase is not the phrase


def test_glossary_phrases_come_from_the_project_glossary():
    phrases = _glossary_phrases()
    assert "金门大桥" in phrases[("golden", "gate")]
    assert all(isinstance(k, tuple) and v for k, v in phrases.items())


def test_windows_pairs_short_sentences_only():
    text = "短句。" + "这是一个比较长的句子，" * 5 + "。另一个。"
    pieces = windows(text)
    assert pieces[:3] == ["短句。", ("这是一个比较长的句子，" * 5 + "。"), "另一个。"]
    assert len(pieces) == 5  # both pairs involve a short sentence


def test_threshold_fit_separates_separable_labels():
    lex = np.array([0.9, 0.8, 0.2, 0.1, 0.0, 0.0])
    sem = np.array([0.0, 0.0, 0.0, 0.0, 0.09, 0.01])
    labels = np.array([True, True, False, False, True, False])
    a, b, balanced = _fit(lex, sem, labels)
    assert balanced == 1.0
    assert 0.2 < a <= 0.8 and 0.01 < b <= 0.09
    assert list((lex >= a) | (sem >= b)) == list(labels)


def test_labelled_sample_is_valid_and_balanced():
    pairs = load_labels(DEFAULT_LABELS)  # checks each passage against its source offsets
    assert len(pairs) >= 30
    assert {p.supported for p in pairs} == {True, False}
    for lang in ("en", "zh"):
        assert {p.supported for p in pairs if p.language == lang} == {True, False}


# ---------------------------------------------------------------------------- question file

GOOD = {"id": "g1", "question": "What did Dario compare scaling to?", "language": "en", "answerable": True,
        "type": "paraphrase", "expected_speaker": "Dario Amodei",
        "gold": [{"source": DARIO, "quote": "所有这些都像化学反应一样"}],
        "reference_answer": "A chemical reaction.", "key_facts": ["chemical reaction"], "split": "dev"}


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines) + "\n",
                    encoding="utf-8")
    return path


def test_valid_file_loads_with_gold_spans(tmp_path):
    unanswerable = {**GOOD, "id": "u1", "answerable": False, "type": "unanswerable", "gold": [], "key_facts": [],
                    "expected_speaker": None}
    qs = load_questions(write_lines(tmp_path / "q.jsonl", [GOOD, "", unanswerable]))
    assert [q.id for q in qs] == ["g1", "u1"] and [q.line for q in qs] == [1, 3]
    text = (BUNDLED_CORPUS / DARIO).read_text(encoding="utf-8")
    span = qs[0].gold_spans[0]
    assert span.start == text.find("所有这些都像化学反应一样")
    assert text[span.start:span.end] == "所有这些都像化学反应一样"
    assert qs[0].cross_lingual  # English question, gold only in a Chinese-only file


def test_repeated_quote_gets_every_occurrence(tmp_path):
    q = {**GOOD, "gold": [{"source": DARIO, "quote": "他们将成为CRISPR技术的创造者。"}]}
    spans = load_questions(write_lines(tmp_path / "q.jsonl", [q]))[0].gold_spans
    assert len(spans) == 2 and spans[0].start < spans[1].start


def test_every_problem_is_reported_with_its_line(tmp_path):
    lines = [
        GOOD,
        '{"id": "broken", ',                                                      # 2: not JSON
        {k: v for k, v in GOOD.items() if k not in ("split", "key_facts")} | {"id": "m"},  # 3: missing keys
        {**GOOD, "id": "nq", "gold": [{"source": DARIO, "quote": "这句话不在文件里"}]},    # 4: quote not found
        {**GOOD, "id": "nf", "gold": [{"source": "999_missing.txt", "quote": "x"}]},       # 5: no such file
        {**GOOD, "id": "bad", "language": "fr", "answerable": "yes"},                     # 6: bad values
        {**GOOD},                                                                # 7: duplicate id
        {**GOOD, "id": "u", "answerable": False},                                # 8: inconsistent
        [1, 2],                                                                  # 9: not an object
    ]
    with pytest.raises(DatasetError) as info:
        load_questions(write_lines(tmp_path / "q.jsonl", lines))
    message = str(info.value)
    for needle in ("line 2: not valid JSON", "line 3 (m): missing key(s) key_facts, split",
                   "line 4 (nq): gold[0]: quote not found in 002_536a685dcacd8e2b.txt",
                   "line 5 (nf): gold[0]: source file '999_missing.txt' not found",
                   "line 6 (bad): 'language' must be one of en, zh", "line 6 (bad): 'answerable' must be true or false",
                   "line 7 (g1): duplicate id 'g1' (first on line 1)",
                   "line 8 (u): 'answerable' is false but type is 'paraphrase'",
                   "line 9: expected a JSON object"):
        assert needle in message
    assert len(info.value.errors) == 10
    assert not any(e.startswith("line 1 ") or e.startswith("line 1:") for e in info.value.errors)  # line 1 is fine


def test_bundled_question_set_is_valid():
    if not DEFAULT_QUESTIONS.exists():
        pytest.skip("eval/questions.jsonl not written yet")
    qs = load_questions()
    assert len({q.id for q in qs}) == len(qs)
    assert any(q.cross_lingual for q in qs)


def test_chinese_only_files():
    assert chinese_only_files(BUNDLED_CORPUS) == {
        "000_55e02b4d6beaaafa.txt", "002_536a685dcacd8e2b.txt", "003_aeea49b3ec2bf58a.txt", "004_3c60e0d740ca6b03.txt"}


def test_filters_and_limit():
    qs = [question() for _ in range(4)]
    for q, (i, lang, t, spk, split) in zip(qs, [("a", "en", "factual", "Amanda Askell", "dev"),
                                                   ("b", "zh", "factual", "Dario Amodei", "test"),
                                                   ("c", "en", "who-said", None, "dev"),
                                                   ("d", "en", "paraphrase", "Amanda Askell", "test")]):
        q.id, q.language, q.type, q.expected_speaker, q.split = i, lang, t, spk, split
    ids = lambda chosen: [q.id for q in chosen]  # noqa: E731
    assert ids(select(qs, parse_filters(["lang=en"]))) == ["a", "c", "d"]
    assert ids(select(qs, parse_filters(["lang=en", "type=factual,paraphrase"]))) == ["a", "d"]
    assert ids(select(qs, parse_filters(["speaker=amanda"]))) == ["a", "d"]
    assert ids(select(qs, parse_filters(["speaker=none"]))) == ["c"]
    assert ids(select(qs, {}, split="test")) == ["b", "d"]
    assert ids(select(qs, parse_filters(["lang=en"]), limit=2)) == ["a", "c"]
    with pytest.raises(ValueError, match="KEY one of"):
        parse_filters(["colour=blue"])


def test_threshold_names_follow_k():
    assert "hit@5" in threshold_names(5) and "hit@3" not in threshold_names(5)
    assert "hit@3" in threshold_names(3) and "total_ms_p95" in threshold_names(3)
    assert quality_metrics(1, answers=False) == ["hit@1", "mrr@10"]


# ---------------------------------------------------------------------------- compare

def make_run(folder: Path, name: str, scores: dict[str, dict], k: int = 5) -> Path:
    folder.mkdir()
    questions = [{"id": qid, "language": "en", "type": "factual", "systems": {"ours": {"scores": s}}}
                 for qid, s in scores.items()]
    (folder / "results.json").write_text(json.dumps({"run": {"name": name, "k": k}, "questions": questions}))
    return folder


def test_compare_lists_improvements_regressions_and_deltas(tmp_path):
    base = {"hit@1": 0.0, "hit@5": 1.0, "mrr@10": 0.5, "citation_recall": 1.0, "false_abstention": 0.0}
    a = make_run(tmp_path / "a", "run-a", {
        "q1": base, "q2": base, "q3": base, "q4": {**base, "faithfulness": 1.0}, "q5": base})
    b = make_run(tmp_path / "b", "run-b", {
        "q1": {**base, "hit@1": 1.0, "mrr@10": 1.0},            # better
        "q2": {**base, "citation_recall": 0.0},                 # worse
        "q3": {**base, "false_abstention": 1.0},                # worse (lower is better)
        "q4": {**base, "faithfulness": 1.0},                    # unchanged
        "q6": base})                                            # new
    out = compare_runs(a, b)
    assert "Comparing run-a → run-b (system: ours, 4 shared questions)" in out
    improved = out.split("Improved (1):")[1].split("Regressed")[0]
    assert "q1 [en factual] hit@1 0.00→1.00, mrr@10 0.50→1.00" in improved
    regressed = out.split("Regressed (2):")[1].split("Unchanged")[0]
    assert "q2 [en factual] citation_recall 1.00→0.00" in regressed
    assert "q3 [en factual] false_abstention 0.00→1.00" in regressed
    assert "Unchanged: 1" in out and "Only in A: q5" in out and "Only in B: q6" in out
    deltas = {line.split()[0]: line.split()[1:] for line in out.split("Aggregate over the shared questions:")[1]
              .splitlines()[2:]}
    assert deltas["hit@1"] == ["0.000", "0.250", "+0.250"]
    assert deltas["citation_recall"] == ["1.000", "0.750", "-0.250"]
    assert deltas["false_abstention"] == ["0.000", "0.250", "+0.250"]
