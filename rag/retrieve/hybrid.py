"""Question → ranked passages: dense + BM25, fused, speaker-aware, diversified.

The parts and why they are here:
- Dense (multilingual e5) understands paraphrase in both languages but, for English questions,
  drifts to the English lines of the bilingual transcript; lexical BM25 over jieba tokens, with
  the English question expanded into Chinese (glossary, then CC-CEDICT), reaches the
  Chinese-only files. Fusion weights therefore depend on the question's language.
- A question naming a person ("what did Askell say…") boosts that person's own turns and the
  summaries about them, and drops the name from the lexical query: their own turns never
  contain their name, so it would only pull in headings and summaries. "Who said…" questions
  are not boosted. An explicit speaker filter wins over both.
- MMR keeps the overlapping translations and summaries from filling the top-k with one idea.
- Chunks enriched at ingest (`rag.ingest.enrichment`) also score by their English questions and gist:
  densely as windows of the chunk, lexically through a BM25 index of their own that English
  questions search. Without enrichment that list is empty and the ranking is what it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rag.errors import UserError
from rag.index.corpus import CorpusIndex, best_rows
from rag.index.embeddings import Embedder
from rag.lexicon import glossary, stem, stopwords, tokenize
from rag.models import NON_PERSON_SPEAKERS, Chunk, Passage, QueryPlan, SearchResult
from rag.retrieve.coverage import (
    foreign_topic,
    missing_answer_type,
    missing_count,
    missing_name,
    unknown_names,
)
from rag.speakers import Aliases, SpeakerTable
from rag.text import detect_language, has_cjk, without_spans

_WHO_SAID = re.compile(r"^\s*(who\b|which (guest|person|speaker)\b)|谁|哪位|哪一位", re.IGNORECASE)
_ENGLISH_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’-]*")


def dense_confidence(best_cosine: float) -> float:
    """The best e5 cosine mapped to [0, 1]: e5 cosines sit in ~0.70–0.90 whatever the question."""
    return min(1.0, max(0.0, (best_cosine - 0.75) / 0.12))


class UnknownSpeaker(UserError):
    pass


@dataclass
class Tuning:
    """Retrieval knobs, measured on the dev half of the eval set (see bench/ and the README)."""

    rrf_k: float = 20.0
    dense_weight_en: float = 1.0
    dense_weight_zh: float = 1.0
    lexical_weight: float = 1.0
    glossary_weight: float = 1.0
    dictionary_weight: float = 0.4
    bilingual_only_weight: float = 0.1  # English words seen only in the bilingual file's English
    pseudo_query_weight: float = 1.0  # dense search with the question's glossary terms in Chinese
    gloss_weight: float = 0.5  # English question words against the English glosses of Chinese chunks
    translation_weight: float = 1.0  # each list from the LLM's translation of the question
    enrichment_weight: float = 1.0  # English question words against the chunks' LLM enrichment (rag.ingest.enrichment)
    common_in_chinese_df: int = 5  # an English word this frequent in the Chinese files needs no translation
    speaker_boost: float = 0.02  # added to the fused score of the named person's own words
    subject_boost: float = 0.01  # … and of summaries about them
    # the chunks before and after the best chunk in its own turn gain this share of its score (never passing it)
    continuation_weight: float = 0.15
    mmr_lambda: float = 0.8
    mmr_pool: int = 30


Reranker = Callable[[str, list[Passage]], list[Passage]]


class HybridRetriever:
    def __init__(
        self,
        index: CorpusIndex,
        embedder: Embedder,
        speakers: SpeakerTable,
        candidates: int = 40,
        tuning: Tuning | None = None,
        reranker: Reranker | None = None,
        venues: Aliases | None = None,
    ):
        self.index = index
        self.embedder = embedder
        self.speakers = speakers
        self.venues = venues or Aliases([])
        self.candidates = candidates
        self.tuning = tuning or Tuning()
        self.reranker = reranker

    # ------------------------------------------------------------------ understanding

    def plan(self, question: str, speaker: str | None = None, source: str | None = None) -> QueryPlan:
        """How to search `question`; `source` (a file name) restricts the search to that document."""
        plan = QueryPlan(question=question, language=detect_language(question))
        if source is not None:
            if source not in self.index.sources:
                raise UserError(f"Unknown source document {source!r}. Known: {', '.join(sorted(self.index.sources))}.")
            plan.source = source
        if speaker:
            plan.speaker = self.speakers.resolve(speaker)
            if plan.speaker is None:
                known = ", ".join(p.name for p in self.speakers.people)
                raise UnknownSpeaker(f"Unknown speaker {speaker!r}. Known speakers: {known}.")
            plan.speaker_filter = True
        elif not _WHO_SAID.search(question):
            named = self.speakers.mentioned(question)
            if len(named) == 1:
                plan.speaker = named[0]
        person_spans = [(a, b) for _, a, b in self.speakers.mentions(question)]
        venue_spans = [] if source is not None else self._venue(question, plan, person_spans)
        if venue_spans and not tokenize(without_spans(question, venue_spans)):  # only the venue asked: search as written
            venue_spans = []
        plan.search_text = without_spans(question, venue_spans)
        # a person's own turns never contain their name
        plan.terms = self._lexical_terms(without_spans(question, venue_spans + (person_spans if plan.speaker else [])), plan)
        plan.never_mentioned = (unknown_names(plan.search_text, self.index, self.speakers)
                                or foreign_topic(plan.search_text, self.index, self.speakers))
        return plan

    def _venue(self, question: str, plan: QueryPlan, person_spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Sets `plan.source` when the question names one indexed venue; returns the spans naming it.

        A venue inside a person's alias ("the Stanford host") names the person, not the venue.
        A named person absent from the venue's file wins over the venue: "what did Dario say at
        the office hours" must not be answered with Amanda's words.
        """
        mentions = [(owner, a, b) for owner, a, b in self.venues.mentions(question)
                    if not any(pa <= a and b <= pb for pa, pb in person_spans)]
        sources = {owner for owner, _, _ in mentions}
        if len(sources) != 1 or not sources <= self.index.sources:
            return []
        source = sources.pop()
        if plan.speaker and not any(c.speaker == plan.speaker for c in self.index.chunks.values() if c.source == source):
            return []
        plan.source = source
        return [(a, b) for _, a, b in mentions]

    def _lexical_terms(self, text: str, plan: QueryPlan) -> dict[str, float]:
        terms: dict[str, float] = {}
        monolingual = self.index.monolingual_vocabulary
        for token in tokenize(text):
            weight = self.tuning.lexical_weight
            if plan.language == "en" and token not in monolingual:
                weight *= self.tuning.bilingual_only_weight
            terms[token] = terms.get(token, 0.0) + weight
        if plan.language == "en":
            plan.chinese_terms = self._bridge_to_chinese(text, terms)
        return terms

    def _bridge_to_chinese(self, text: str, terms: dict[str, float]) -> list[str]:
        """Add Chinese terms for an English question; returns the glossary's Chinese terms.

        All the Chinese terms of one English phrase share one weight, so a concept with many
        translations does not drown the others; a phrase the Chinese files already contain as
        written (Anthropic, ASL-3) needs its translations less.
        """
        words = [stem(w) for w in _ENGLISH_WORD.findall(text)]
        monolingual = self.index.monolingual_vocabulary
        used: set[str] = set()
        chinese: list[str] = []
        for phrase, variants in glossary().match(words):
            used.update(phrase)
            tokens = {tok for zh in variants for tok in (tokenize(zh) or [zh])}
            weight = self.tuning.glossary_weight / len(tokens) ** 0.5
            if all(w in monolingual and self.index.lexical.df.get(w, 0) >= self.tuning.common_in_chinese_df for w in phrase):
                weight *= self.tuning.bilingual_only_weight * 3
            for token in tokens:
                terms[token] = max(terms.get(token, 0.0), weight)
            chinese.extend(z for z in variants if z not in chinese)
        bridge = self.index.lexical.extras.get("bridge", {})
        stop = stopwords()
        for word in words:
            if word in used or word in stop:
                continue
            options = bridge.get(word, [])
            for zh in options:
                terms[zh] = max(terms.get(zh, 0.0), self.tuning.dictionary_weight / max(1, len(options)) ** 0.5)
        return chinese

    # ------------------------------------------------------------------ search

    def search(self, question: str, k: int = 5, speaker: str | None = None, source: str | None = None,
               translations: list[str] | tuple[str, ...] = ()) -> SearchResult:
        """`source` (a file name) keeps one document; `translations`: the question in the corpus's
        other language (LLM query expansion), each searched densely and lexically and fused."""
        question = question.strip()
        if not question:
            raise UserError("The question is empty.")
        plan = self.plan(question, speaker, source)
        chunks = self.index.chunks
        if not chunks:
            return SearchResult(plan, [], 0.0)
        allowed = self._allowed(plan)

        plan.translations = list(translations)
        # as for the question: a person's own turns never contain their name
        translated = [without_spans(text, [(a, b) for _, a, b in self.speakers.mentions(text)]) if plan.speaker
                      else text for text in plan.translations]
        pseudo_query = [" ".join(plan.chinese_terms[:12])] if plan.chinese_terms else []
        # every dense query of this search in one scan of the vectors
        dense, *rest = self.index.nearest(
            np.stack([self.embedder.encode_query(text) for text in [plan.search_text, *pseudo_query, *translated]]),
            self.candidates, allowed)
        pseudo = rest.pop(0) if pseudo_query else []

        lexical_hits = self._lexical_hits(self.index.lexical, plan.terms, allowed)
        gloss_hits: list[tuple[str, float]] = []
        enriched_hits: list[tuple[str, float]] = []
        if plan.language == "en":
            english = {t: 1.0 for t in plan.terms if not has_cjk(t)}
            gloss_hits = self._lexical_hits(self.index.glossed, english, allowed)
            enriched_hits = self._lexical_hits(self.index.enriched, english, allowed)

        t = self.tuning
        dense_weight = t.dense_weight_en if plan.language == "en" else t.dense_weight_zh
        fused: dict[str, float] = {}
        lists = [(dense_weight, dense), (1.0, lexical_hits), (t.pseudo_query_weight, pseudo), (t.gloss_weight, gloss_hits),
                 (t.enrichment_weight, enriched_hits)]
        for text, hits in zip(translated, rest):
            lists.append((t.translation_weight, hits))
            lists.append((t.translation_weight, self._lexical_hits(self.index.lexical, dict.fromkeys(tokenize(text), 1.0), allowed)))
        for weight, hits in lists:
            for rank, (chunk_id, _) in enumerate(hits):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (t.rrf_k + rank + 1)
        if plan.speaker and not plan.speaker_filter:
            for chunk_id in fused:
                fused[chunk_id] += self._speaker_bonus(chunks[chunk_id], plan.speaker)
        self._continue_best(fused, allowed)

        dense_score = dict(dense)
        lexical_score = dict(lexical_hits)
        ranked = sorted(fused, key=fused.get, reverse=True)
        ranked = self._diversify(ranked, fused, k)
        passages = [
            Passage(
                chunk=chunks[cid],
                score=fused[cid],
                rank=r + 1,
                shown_text=chunks[cid].text_for(plan.language),
                signals={"dense": dense_score.get(cid, 0.0), "lexical": lexical_score.get(cid, 0.0)},
            )
            for r, cid in enumerate(ranked)
        ]
        if self.reranker:
            passages = self.reranker(plan.search_text, passages)
            for r, p in enumerate(passages):
                p.rank = r + 1
        best_dense = max((s for _, s in dense), default=0.0)
        plan.missing_answer_type = missing_answer_type(
            question, (p.chunk.text + (p.chunk.parallel_text or "") for p in passages[:k]))
        if plan.missing_answer_type is None and missing_name(question, passages[:k], plan.terms):
            plan.missing_answer_type = "name"
        if plan.missing_answer_type is None and missing_count(question, passages[:k], self._unnamed(question, plan.terms)):
            plan.missing_answer_type = "count"
        return SearchResult(plan, passages[:k], self._confidence(best_dense, lexical_hits, plan))

    def _continue_best(self, fused: dict[str, float], allowed: Callable[[Chunk], bool] | None) -> None:
        """Lift the chunks before and after the best fused chunk in its own turn, but never above it.

        A long answer is cut into chunks, and a question often matches one of them best while
        the words that answer it are in the next or the previous chunk of that turn, sharing
        little with the question. Only the best chunk spreads, and what it lifts stays below it:
        spreading from more of the top let the chunks of one long turn lift each other over other
        answers, and an uncapped share put a neighbour above a right first passage (measured on the
        readable sets). The host's question before an answer needs no such lift: each chunk of
        the answer is embedded with it (`Chunk.context`).
        """
        if not fused or not self.tuning.continuation_weight:
            return
        best = max(fused, key=fused.get)
        top = fused[best]
        chunk = self.index.chunks[best]
        turn = self.index.by_turn.get((chunk.source_path, chunk.turn_index), [chunk])
        at = next(i for i, c in enumerate(turn) if c.id == best)
        for other in turn[max(0, at - 1) : at] + turn[at + 1 : at + 2]:
            own = fused.get(other.id, 0.0)
            if own < top and (allowed is None or allowed(other)):
                fused[other.id] = min(own + self.tuning.continuation_weight * top, float(np.nextafter(top, 0.0)))

    def _unnamed(self, question: str, terms: dict[str, float]) -> dict[str, float]:
        """The terms without the words of the people the question names: "达里奥说的那个信托有几个人"
        counts the trust's members, and a sentence about Dario counting something else is no answer."""
        named = {t for _, a, b in self.speakers.mentions(question) for t in tokenize(question[a:b])}
        return {t: w for t, w in terms.items() if t not in named}

    def _lexical_hits(self, bm25, terms: dict[str, float], allowed: Callable[[Chunk], bool] | None) -> list[tuple[str, float]]:
        """The best `candidates` chunks of a BM25 index for these weighted terms."""
        chunks = self.index.chunks
        raw = bm25.scores(terms)
        matched = np.flatnonzero(raw > 0)
        keep = None if allowed is None else (lambda row: allowed(chunks[bm25.ids[matched[row]]]))
        rows = matched[best_rows(raw[matched], self.candidates, keep)]
        return [(bm25.ids[i], float(raw[i])) for i in rows]

    def _allowed(self, plan: QueryPlan) -> Callable[[Chunk], bool] | None:
        speaker = plan.speaker if plan.speaker_filter else None
        if speaker is None and plan.source is None:
            return None
        return lambda c: speaker in (None, c.speaker) and plan.source in (None, c.source)

    def _speaker_bonus(self, chunk: Chunk, person: str) -> float:
        if chunk.speaker == person:
            return self.tuning.speaker_boost
        if chunk.subject == person and chunk.speaker in NON_PERSON_SPEAKERS:
            return self.tuning.subject_boost
        return 0.0

    def _diversify(self, ranked: list[str], fused: dict[str, float], k: int) -> list[str]:
        """Maximal marginal relevance over the top of the fused list, using the stored vectors."""
        pool = ranked[: self.tuning.mmr_pool]
        vectors = self.index.vectors(pool)
        if len(pool) <= 1 or len(vectors) < len(pool):
            return ranked
        top = fused[pool[0]]
        relevance = {cid: fused[cid] / top for cid in pool}
        chosen: list[str] = []
        rest = list(pool)
        lam = self.tuning.mmr_lambda
        while rest and len(chosen) < max(k, 1) * 2:
            def mmr(cid: str) -> float:
                redundancy = max((float(vectors[cid] @ vectors[c]) for c in chosen), default=0.0)
                return lam * relevance[cid] - (1 - lam) * redundancy
            best = max(rest, key=mmr)
            chosen.append(best)
            rest.remove(best)
        return chosen + rest + ranked[len(pool) :]

    @staticmethod
    def _confidence(best_dense: float, lexical_hits: list[tuple[str, float]], plan: QueryPlan) -> float:
        """How likely the corpus answers at all, in [0, 1]; the answerer abstains below a threshold.

        Combines the best dense similarity (e5 cosines sit in ~0.70–0.90) with how much of the
        weighted query the best lexical hit matched.
        """
        dense_part = dense_confidence(best_dense)
        total = sum(plan.terms.values()) or 1.0
        best_lexical = lexical_hits[0][1] if lexical_hits else 0.0
        lexical_part = min(1.0, best_lexical / (4.0 * total ** 0.5))
        confidence = 0.6 * dense_part + 0.4 * lexical_part
        if plan.never_mentioned or plan.missing_answer_type:  # "the capital of Peru"; "the day Claude 4 came out"
            confidence *= 0.3
        return round(confidence, 4)
