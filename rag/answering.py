"""Passages → a short cited answer.

`Answerer` is the seam LLM backends plug into. The default `ExtractiveAnswerer` needs no model:
it quotes the most relevant sentence(s) of the best passages, attributed to who said them, and
every line carries the `[n]` of the passage it was copied from. Quoting instead of paraphrasing
is what makes "never a citation that doesn't support the claim" hold without an LLM.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from .lexicon import tokenize
from .models import EDITORIAL, NARRATOR, Answer, Citation, Passage
from .retrieval import QueryPlan, SearchResult
from .settings import PROMPTS_DIR
from .text import sentences

StreamItem = str | Answer  # text deltas, then the finished Answer last


class Answerer(Protocol):
    name: str

    def answer(self, result: SearchResult) -> Answer: ...

    def answer_stream(self, result: SearchResult) -> Iterator[StreamItem]: ...


def collect(stream: Iterator[StreamItem]) -> Answer:
    """The finished Answer at the end of a stream."""
    final = None
    for item in stream:
        if isinstance(item, Answer):
            final = item
    if final is None:
        raise RuntimeError("answer stream ended without an Answer")
    return final


@lru_cache(maxsize=4)
def load_phrases(path: Path = PROMPTS_DIR / "extractive.toml") -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


_INTERVIEWERS = {"Lex Fridman", "Host"}


class ExtractiveAnswerer:
    name = "extractive"

    def __init__(self, min_confidence: float, max_citations: int = 3, max_quote_chars: int = 220):
        self.min_confidence = min_confidence
        self.max_citations = max_citations
        self.max_quote_chars = max_quote_chars

    def answer(self, result: SearchResult) -> Answer:
        return collect(self.answer_stream(result))

    def answer_stream(self, result: SearchResult) -> Iterator[StreamItem]:
        started = time.perf_counter()
        plan = result.plan
        phrases = load_phrases()["zh" if plan.language == "zh" else "en"]
        picks = self._pick(result) if result.confidence >= self.min_confidence else []
        if not picks:
            text = phrases["abstain"] + self._missing(plan, phrases)
            yield text
            yield Answer(plan.question, text, True, [], result.passages, self.name, {"generation": _ms(started)})
            return

        lines = [phrases["intro"]]
        yield lines[0]
        citations: list[Citation] = []
        for n, (passage, quote) in enumerate(picks, 1):
            citations.append(Citation(n, passage))
            line = phrases["line"].format(who=self._who(passage, phrases), quote=quote, n=n)
            lines.append(line)
            yield "\n" + line
        if plan.language == "en" and phrases["translated_note"] and any(p.chunk.language == "zh" and not (
            p.chunk.parallel_language == "en") for p, _ in picks):
            lines.append(phrases["translated_note"])
            yield "\n" + phrases["translated_note"]
        yield Answer(plan.question, "\n".join(lines), False, citations, result.passages, self.name,
                     {"generation": _ms(started)})

    # ------------------------------------------------------------------

    def _pick(self, result: SearchResult) -> list[tuple[Passage, str]]:
        """The passages worth quoting and the sentence(s) to quote from each."""
        plan = result.plan
        # a question about a guest is answered by the guest, not by the interviewer's question;
        # a "who said" question may be answered by anyone, the interviewer included
        about_guest = plan.speaker is not None and plan.speaker not in _INTERVIEWERS
        ordered = sorted(result.passages, key=lambda p: (about_guest and p.chunk.speaker in _INTERVIEWERS, p.rank))
        picks: list[tuple[Passage, str]] = []
        for passage in ordered:
            quote, overlap = self._best_quote(passage, plan.terms)
            if picks and overlap <= 0:
                continue  # only the top passage may be quoted on meaning alone
            picks.append((passage, quote))
            if len(picks) == self.max_citations:
                break
        return picks

    def _best_quote(self, passage: Passage, terms: dict[str, float]) -> tuple[str, float]:
        text = passage.shown_text or passage.chunk.text
        # sentence by sentence within paragraphs: a quote never runs across a heading or list line
        numbered = [
            (n, sentence) for n, para in enumerate(text.split("\n")) for sentence in sentences(para)
        ] or [(0, text)]
        scored = []
        for i, (_, sentence) in enumerate(numbered):
            tokens = set(tokenize(sentence))
            overlap = sum(w for t, w in terms.items() if t in tokens)
            question_penalty = 0.5 if sentence.rstrip().endswith(("?", "？")) else 0.0
            scored.append((overlap - question_penalty - 0.01 * i, overlap, i))
        _, overlap, best = max(scored)
        paragraph, quote = numbered[best]
        # a very short sentence says little alone: carry on into the next one of its paragraph
        if (best + 1 < len(numbered) and numbered[best + 1][0] == paragraph
                and len(quote) < (40 if passage.chunk.language == "zh" else 90)):
            gap = "" if passage.chunk.language == "zh" and passage.shown_text == passage.chunk.text else " "
            quote += gap + numbered[best + 1][1]
        if len(quote) > self.max_quote_chars:
            quote = quote[: self.max_quote_chars].rstrip() + "…"
        return quote, overlap

    @staticmethod
    def _missing(plan: QueryPlan, phrases: dict) -> str:
        """What the interviews lack, when the retriever found out (see rag/answerability.py)."""
        if plan.never_mentioned:
            return phrases["never_mentioned"].format(names=phrases["name_separator"].join(plan.never_mentioned))
        if plan.missing_answer_type:
            return phrases[f"no_{plan.missing_answer_type}"]
        return ""

    @staticmethod
    def _who(passage: Passage, phrases: dict) -> str:
        chunk = passage.chunk
        if chunk.speaker in (EDITORIAL, NARRATOR):
            kind = phrases["editorial" if chunk.speaker == EDITORIAL else "narrator"]
            if chunk.subject:
                return phrases["who_summary"].format(source_kind=kind, subject=chunk.subject)
            return phrases["who_anonymous"].format(source_kind=kind)
        return phrases["who_person"].format(speaker=chunk.speaker or chunk.source)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
