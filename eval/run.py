"""Running questions through a system (our pipeline or the baseline) and scoring each one.

Retrieval is measured on what the user gets: hit@1 and hit@k on `search(question, k)`, the same
top-k the answerer sees. Our retriever's MMR depends on k (it diversifies over 2k), so MRR@10 is
taken from a second search at depth 10 when k < 10; the baseline's ranking is prefix-stable, so
one depth-10 search serves both.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from tqdm import tqdm

from rag.answer.citations import answer_body, split_claims
from rag.models import SearchResult
from rag.prompts import framing_phrases

from .dataset import Question
from .judge import Judge
from .metrics import first_hit_rank, hit_at, passage_matches, reciprocal_rank, share

DEPTH = 10


class PipelineSystem:
    """Our configured pipeline: exactly `pipeline.search`, then the configured answerer."""

    name = "ours"
    prefix_stable = False

    def __init__(self, pipeline):
        self.pipeline = pipeline

    def search(self, question: str, k: int, history: list[dict] = ()) -> SearchResult:
        """A follow-up is made standalone first, exactly as `ask` does."""
        searched, rewritten_by = self.pipeline.condenser.condense(question, history)
        result = self.pipeline.search(searched, k, interface="eval")
        result.plan.rewritten_by = rewritten_by
        return result


@dataclass
class Retrieved:
    shown: SearchResult
    deep: SearchResult
    ms: float


def retrieve(system, question: str, k: int, depth: int = DEPTH, history: list[dict] = ()) -> Retrieved:
    """Our pipeline makes a follow-up standalone; the textbook baseline searches it as written."""
    started = time.perf_counter()
    if getattr(system, "prefix_stable", False):
        deep = system.search(question, max(k, depth))
        ms = (time.perf_counter() - started) * 1000
        shown = SearchResult(deep.plan, deep.passages[:k], deep.confidence)
    else:
        shown = system.search(question, k, history)
        ms = (time.perf_counter() - started) * 1000
        deep = shown if k >= depth else system.search(question, depth, history)
    return Retrieved(shown, deep, ms)


def _compact(passage_json: dict, gold) -> dict:
    return {
        "rank": passage_json["rank"], "source": passage_json["source"],
        "char_start": passage_json["char_start"], "char_end": passage_json["char_end"],
        "speaker": passage_json.get("speaker"), "score": passage_json.get("score"),
        "gold": passage_matches(passage_json, gold), "text": passage_json["text"][:300],
    }


def _tokens(answer_json: dict) -> int | None:
    usage = answer_json.get("usage") or answer_json.get("tokens")
    if isinstance(usage, int):
        return usage
    if isinstance(usage, dict):
        counts = [v for v in usage.values() if isinstance(v, int)]
        return sum(counts) if counts else None
    return None


def evaluate_system(q: Question, system, answerer, judge: Judge | None, k: int, min_confidence: float,
                    depth: int = DEPTH) -> dict:
    """One question through one system: retrieval, and (with an answerer) the answer's checks."""
    gold = q.gold_spans
    rec: dict = {"error": None}
    try:
        got = retrieve(system, q.question, k, depth, q.history)
    except Exception as exc:  # recorded, counted as a miss, and listed in the report
        rec["error"] = f"{type(exc).__name__}: {exc}"
        rec["traceback"] = traceback.format_exc(limit=3)
        rec["scores"] = score(q, rec, k, answered=answerer is not None)
        return rec
    shown = [p.to_json() for p in got.shown.passages]
    deep = [p.to_json() for p in got.deep.passages][:depth]
    rec.update(
        confidence=got.shown.confidence,
        low_confidence=got.shown.confidence < min_confidence,
        passages=[_compact(p, gold) for p in shown],
        first_hit=first_hit_rank(shown, gold),
        first_hit_deep=first_hit_rank(deep, gold),
        deep=None if got.deep is got.shown else [[p["source"], p["char_start"], p["char_end"]] for p in deep],
        timings_ms={"retrieval": round(got.ms, 1)},
    )
    if answerer is not None:
        try:
            answer = answerer.answer(got.shown, q.question)
            answer.timings_ms["retrieval"] = got.ms
            _check_answer(q, rec, answer.to_json(), judge)
        except Exception as exc:
            rec["error"] = f"{type(exc).__name__}: {exc}"
            rec["traceback"] = traceback.format_exc(limit=3)
            rec["answer"] = None
    rec["scores"] = score(q, rec, k, answered=answerer is not None)
    return rec


def _check_answer(q: Question, rec: dict, answer: dict, judge: Judge) -> None:
    timings = answer.get("timings_ms", {})
    rec["timings_ms"]["generation"] = timings.get("generation")
    if rec["timings_ms"].get("generation") is not None:
        rec["timings_ms"]["total"] = round(rec["timings_ms"]["retrieval"] + rec["timings_ms"]["generation"], 1)
    rec["tokens"] = _tokens(answer)
    rec["answer"] = {"text": answer["answer"], "abstained": answer["abstained"], "backend": answer.get("backend")}
    by_n = {c["n"]: c for c in answer["citations"]}

    citations = []
    for c in answer["citations"]:
        is_gold = passage_matches(c, q.gold_spans)
        judged = None
        if not is_gold and q.answerable and q.key_facts:
            judged = any(judge.supports(fact, c["text"]).supported for fact in q.key_facts)
        citations.append({"n": c["n"], "source": c["source"], "char_start": c["char_start"], "char_end": c["char_end"],
                          "speaker": c.get("speaker"), "gold": is_gold, "judged_supporting": judged,
                          "correct": bool(is_gold or judged)})
    rec["citations"] = citations

    claims = []
    if not answer["abstained"]:
        for claim in split_claims(answer["answer"], framing_phrases()):
            best = None
            for n in claim.cited:
                if n in by_n:
                    verdict = judge.supports(claim.text, by_n[n]["text"])
                    if best is None or (verdict.supported, verdict.lexical or 0) > (best.supported, best.lexical or 0):
                        best = verdict
            claims.append({"text": claim.text, "cited": claim.cited,
                           **(best.to_json() if best else {"supported": False, "lexical": None, "semantic": None})})
    rec["claims"] = claims

    body = answer_body(answer["answer"], framing_phrases())
    facts = []
    if q.answerable:
        for fact in q.key_facts:
            verdict = judge.supports(fact, body) if not answer["abstained"] else None
            facts.append({"fact": fact, **(verdict.to_json() if verdict else {"supported": False, "lexical": None,
                                                                              "semantic": None})})
    rec["key_facts"] = facts
    rec["answer_similarity"] = (judge.similarity(body or answer["answer"], q.reference_answer)
                                if q.answerable and q.reference_answer.strip() else None)


def score(q: Question, rec: dict, k: int, answered: bool = True) -> dict:
    """Per-question metrics; None where a metric does not apply."""
    ans = q.answerable
    first, deep = rec.get("first_hit"), rec.get("first_hit_deep")
    s: dict = {
        "hit@1": hit_at(first, 1) if ans else None,
        f"hit@{k}": hit_at(first, k) if ans else None,
        "mrr@10": reciprocal_rank(deep, DEPTH) if ans else None,
        "low_confidence": None if rec.get("confidence") is None else float(rec["low_confidence"]),
    }
    if not answered:
        return s
    answer = rec.get("answer")
    if answer is None:  # the system failed on this question
        s.update({"citation_precision": None, "citation_recall": 0.0 if ans else None, "faithfulness": None,
                  "key_fact_coverage": 0.0 if ans and q.key_facts else None, "answer_similarity": None,
                  "abstention": 0.0 if not ans else None, "false_abstention": None})
        return s
    abstained = answer["abstained"]
    citations = rec.get("citations", [])
    s["citation_precision"] = share([c["correct"] for c in citations]) if ans and citations else None
    s["citation_recall"] = (1.0 if any(c["gold"] for c in citations) else 0.0) if ans else None
    s["faithfulness"] = share([c["supported"] for c in rec.get("claims", [])]) if not abstained else None
    s["key_fact_coverage"] = share([f["supported"] for f in rec.get("key_facts", [])]) if ans and q.key_facts else None
    s["answer_similarity"] = rec.get("answer_similarity") if ans else None
    s["abstention"] = (1.0 if abstained else 0.0) if not ans else None
    s["false_abstention"] = (1.0 if abstained else 0.0) if ans else None
    return s


def run_questions(questions: list[Question], systems: list, answerer, judge: Judge | None, k: int,
                  min_confidence: float, show_progress: bool = True,
                  on_question: Callable[[dict], None] | None = None) -> list[dict]:
    records = []
    bar = tqdm(questions, desc="Evaluating", unit="q", disable=not show_progress, dynamic_ncols=True)
    for q in bar:
        bar.set_postfix_str(q.id)
        rec = q.to_json()
        rec["systems"] = {s.name: evaluate_system(q, s, answerer, judge, k, min_confidence) for s in systems}
        records.append(rec)
        if on_question:
            on_question(rec)
    return records
