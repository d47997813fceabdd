"""Passages → a draft answer whose `[n]` markers cite them. Two kinds of answerer:

- `ExtractiveAnswerer` needs no model: it quotes the most relevant sentence(s) of the best
  passages, attributed to who said them. Quoting is what makes "never a citation that doesn't
  support the claim" hold without an LLM; it is the default and every LLM answer's fallback.
- `LLMAnswerer` puts the passages, numbered and delimited as data, into the answer prompt
  (`prompts/answer.toml`) within a token budget, best passages first and last (models read the
  ends of a long context best), and streams the model's reply.

Both return a `Draft`: the passages in the order they were numbered, and the raw text. The
pipeline does what every answerer shares: abstaining, checking each citation, falling back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from rag.ingest.chunking import count_tokens
from rag.lexicon import tokenize
from rag.llm.backends import ChatBackend, Messages
from rag.models import EDITORIAL, NARRATOR, Passage, QueryPlan, SearchResult
from rag.prompts import LANGUAGE_NAMES, load_phrases, load_prompt
from rag.retrieve.coverage import best_quote

NOT_COVERED = "NOT COVERED"  # the answer prompt's reply when the passages don't answer


@dataclass
class Draft:
    sources: list[Passage]  # `[n]` in the text is sources[n - 1]
    deltas: Iterator[str]


class Answerer(Protocol):
    name: str
    model: str | None

    def draft(self, result: SearchResult, language: str) -> Draft: ...


_INTERVIEWERS = {"Lex Fridman", "Host"}
_SAYS_SOMETHING = 3  # content words (stopwords aside) a quote needs to be quoted for its meaning alone


class ExtractiveAnswerer:
    name = "extractive"
    model = None

    def __init__(self, max_citations: int = 3, max_quote_chars: int = 220):
        self.max_citations = max_citations
        self.max_quote_chars = max_quote_chars

    def draft(self, result: SearchResult, language: str) -> Draft:
        return Draft(result.passages, self._lines(result, language))

    def _lines(self, result: SearchResult, language: str) -> Iterator[str]:
        phrases = load_phrases()["zh" if language == "zh" else "en"]
        picks = self._pick(result)
        yield phrases["intro"]
        person = result.plan.speaker
        if person and person not in _INTERVIEWERS and not any(self._speaks_for(p, person) for p, _ in picks):
            yield "\n" + phrases["speaker_absent"].format(speaker=person)
        for passage, quote in picks:
            n = result.passages.index(passage) + 1
            yield "\n" + phrases["line"].format(who=self._who(passage, phrases), quote=quote, n=n)
        if language == "en" and phrases["translated_note"] and any(p.chunk.language == "zh" and not (
                p.chunk.parallel_language == "en") for p, _ in picks):
            yield "\n" + phrases["translated_note"]

    # ------------------------------------------------------------------

    def _pick(self, result: SearchResult) -> list[tuple[Passage, str]]:
        """The passages worth quoting and the sentence(s) to quote from each.

        Only the best-ranked passage may be quoted on meaning alone, and only if it says something
        ("Mhm.", "是的。", "谢谢你的谈话。" rank high through the question they are embedded with);
        the others must share a word with the question. A question about a guest is answered by
        the guest's own words (or summaries of them) first, other guests next, the interviewer's
        questions last; a "who said" question may be answered by anyone, the interviewer included.
        """
        plan = result.plan
        about_guest = plan.speaker is not None and plan.speaker not in _INTERVIEWERS
        quotes = [(passage, *best_quote(passage, plan.terms, self.max_quote_chars)) for passage in result.passages]
        quotable = [(passage, quote) for passage, quote, overlap in quotes if overlap > 0 or (
            passage is result.passages[0] and len(tokenize(quote)) >= _SAYS_SOMETHING)]
        if not quotable and quotes:  # nothing better: the best passage, whatever it says
            best, quote, _ = quotes[0]
            quotable = [(best, quote)]

        def order(pick: tuple[Passage, str]) -> tuple[int, int]:
            passage = pick[0]
            if not about_guest:
                return 0, passage.rank
            if self._speaks_for(passage, plan.speaker):
                return 0, passage.rank
            return (2 if passage.chunk.speaker in _INTERVIEWERS else 1), passage.rank

        return sorted(quotable, key=order)[: self.max_citations]

    @staticmethod
    def _speaks_for(passage: Passage, person: str) -> bool:
        """The person's own words, or a summary of them."""
        chunk = passage.chunk
        return chunk.speaker == person or (chunk.speaker in (EDITORIAL, NARRATOR) and chunk.subject == person)

    @staticmethod
    def _who(passage: Passage, phrases: dict) -> str:
        chunk = passage.chunk
        if chunk.speaker in (EDITORIAL, NARRATOR):
            kind = phrases["editorial" if chunk.speaker == EDITORIAL else "narrator"]
            if chunk.subject:
                return phrases["who_summary"].format(source_kind=kind, subject=chunk.subject)
            return phrases["who_anonymous"].format(source_kind=kind)
        return phrases["who_person"].format(speaker=chunk.speaker or chunk.source)



def abstention(plan: QueryPlan, language: str) -> str:
    """ "Not covered", and what the interviews lack when retrieval found out (rag/retrieve/coverage.py)."""
    phrases = load_phrases()["zh" if language == "zh" else "en"]
    missing = ""
    if plan.never_mentioned:
        missing = phrases["never_mentioned"].format(names=phrases["name_separator"].join(plan.never_mentioned))
    elif plan.missing_answer_type:
        missing = phrases[f"no_{plan.missing_answer_type}"]
    return phrases["abstain"] + missing


def fallback_notice(reason: str, language: str) -> str:
    return load_phrases()["zh" if language == "zh" else "en"]["fallback"].format(reason=reason)


def format_passages(passages: list[Passage], language: str) -> str:
    """The numbered passages for the answer prompt: who, where, what language, then the text."""
    blocks = []
    for n, passage in enumerate(passages, 1):
        chunk = passage.chunk
        text = chunk.text_for(language)
        shown_language = chunk.parallel_language if text is chunk.parallel_text else chunk.language
        blocks.append(f"[{n}] Speaker: {chunk.attribution} | Source: {chunk.title or chunk.source} | "
                      f"Language: {LANGUAGE_NAMES.get(shown_language, shown_language)}\n{text}")
    return "\n\n".join(blocks)


def ends_first(passages: list[Passage]) -> list[Passage]:
    """Best passages at the start and the end, weakest in the middle: [1, 3, 5, 4, 2]."""
    return passages[::2] + passages[1::2][::-1]


class LLMAnswerer:
    """The configured chat model writes the answer from the numbered passages."""

    def __init__(self, backend: ChatBackend, context_tokens: int):
        self.backend = backend
        self.name = backend.name
        self.context_tokens = context_tokens

    @property
    def model(self) -> str:
        return self.backend.model

    def prompt(self, result: SearchResult, language: str) -> tuple[list[Passage], Messages]:
        """The passages as numbered in the prompt, and the prompt's messages."""
        sources = ends_first(self._within_budget(result.passages, language))
        messages = load_prompt("answer").messages(
            question=result.plan.question, language_name=LANGUAGE_NAMES.get(language, "English"),
            passages=format_passages(sources, language), not_covered=NOT_COVERED)
        return sources, messages

    def draft(self, result: SearchResult, language: str) -> Draft:
        sources, messages = self.prompt(result, language)
        return Draft(sources, self.backend.stream(messages))

    def _within_budget(self, passages: list[Passage], language: str) -> list[Passage]:
        """As many of the best passages as fit `context_tokens` (always at least one)."""
        kept, used = [], 0
        for passage in passages:
            cost = count_tokens(passage.chunk.text_for(language)) + 30  # + its header line
            if kept and used + cost > self.context_tokens:
                break
            kept.append(passage)
            used += cost
        return kept
