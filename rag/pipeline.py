"""The app's front door: ingest, search, ask (whole or streamed). CLI, web, Slack and eval all
go through this object, so they behave the same.

What every answerer shares happens here, once: follow-ups rewritten to stand alone, abstention
("the interviews don't cover that"; with an LLM and the opt-in check, also when it reads that the
best passages don't state the answer), every citation checked, and the fall back to the
extractive answer when an LLM fails or cites nothing. Interfaces render the events.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rag.answer.answerability import AnswerabilityCheck
from rag.answer.answerers import NOT_COVERED, Answerer, ExtractiveAnswerer, abstention
from rag.answer.citations import StreamGuard
from rag.answer.support import CorpusResources, SupportChecker, bundled_thresholds
from rag.answer.verification import verify
from rag.caching import shared_cached_property
from rag.errors import ConfigError, UserError
from rag.events import Completed, Event, Retrieved, TextDelta
from rag.index.corpus import CorpusIndex
from rag.index.embeddings import Embedder
from rag.ingest.build import (
    FileLimits,
    IngestReport,
    Progress,
    ingest,
    ingest_lock,
    outdated,
    reembed_outdated,
)
from rag.ingest.enrichment import EnrichmentWriter
from rag.llm.backends import describe_failure
from rag.logs import RequestLog
from rag.models import Answer, SearchResult
from rag.retrieve.expansion import QueryTranslator
from rag.retrieve.followups import ChatMessage, Condenser
from rag.retrieve.hybrid import HybridRetriever
from rag.settings import Settings
from rag.text import detect_language
from vectorstore.store import StoreError, check_embedder

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
MAX_K = 50  # passages per answer; more would not fit any prompt and only slow the search


class EmptyIndex(UserError):
    pass


@contextmanager
def _store_errors() -> Iterator[None]:
    """The store's errors (unreachable, unreadable, another embedder) become `UserError`s: their
    message names the store and says what to do."""
    try:
        yield
    except StoreError as exc:
        raise UserError(str(exc)) from exc


def clean_question(question: str | None) -> str:
    """Printable text, trimmed; empty or over-long questions are refused with a clear message."""
    text = (question or "").encode("utf-8", "replace").decode("utf-8")  # lone surrogates → "?"
    text = "".join(ch if ch in "\n\t" or unicodedata.category(ch)[0] != "C" else " " for ch in text)
    text = " ".join(text.split())
    if not text:
        raise UserError("The question is empty.")
    if len(text) > MAX_QUESTION_CHARS:
        raise UserError(f"The question is {len(text):,} characters long; please keep it under "
                        f"{MAX_QUESTION_CHARS:,}.")
    return text


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        index: CorpusIndex,
        embedder: Embedder,
        retriever: HybridRetriever,
        answerer: Answerer,
        condenser: Condenser,
        translator: QueryTranslator | None = None,
        checker: AnswerabilityCheck | None = None,
        enricher: EnrichmentWriter | None = None,
    ):
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.retriever = retriever
        self.answerer = answerer
        self.condenser = condenser
        self.translator = translator
        self.checker = checker
        self.enricher = enricher
        self.extractive = answerer if isinstance(answerer, ExtractiveAnswerer) else ExtractiveAnswerer()

    # ------------------------------------------------------------------ index

    def ingest(self, paths: list[Path] | None = None, rebuild: bool = False, show_progress: bool = True,
               on_progress: Progress | None = None, enrich: bool = False) -> IngestReport:
        """Index `paths` (default: the configured corpus); refused while another ingest runs.
        `enrich`: the LLM first writes what Chinese chunks lack (`rag.ingest.enrichment`)."""
        if enrich and self.enricher is None:
            raise ConfigError("Enrichment is written by an LLM and none is configured: set RAG_LLM (and "
                              "RAG_LLM_BASE_URL or RAG_LLM_MODEL), e.g. `rag ingest --enrich --llm openai "
                              "--base-url http://127.0.0.1:8080/v1`.")
        with _store_errors(), ingest_lock(self.settings.data_dir, wait=False):
            return self._ingest(paths or list(self.settings.corpus), rebuild, show_progress, on_progress,
                                self.enricher if enrich else None)

    def _ingest(self, paths: list[Path], rebuild: bool, show_progress: bool,
                on_progress: Progress | None = None, writer: EnrichmentWriter | None = None) -> IngestReport:
        limits = FileLimits(
            max_bytes=int(self.settings.max_file_mb * 1e6),
            roots=tuple(p.resolve() for p in self.settings.ingest_roots + self.settings.corpus)
            if self.settings.ingest_roots else (),
        )
        return ingest(paths, self.index, self.embedder, self.settings.chunk_tokens, limits, show_progress, rebuild,
                      on_progress, writer)

    def ensure_ingested(self, show_progress: bool = True, on_progress: Progress | None = None) -> IngestReport | None:
        """Build the index from the configured corpus on first use; renew what older code stored.

        Waits for an ingest running elsewhere, then builds only if that one did not.
        """
        with _store_errors():
            self.index.sync()
            if self.index.chunks and not outdated(self.index):
                return None
            with ingest_lock(self.settings.data_dir, wait=True):
                self.index.sync()
                if self.index.chunks:
                    return reembed_outdated(self.index, self.embedder, show_progress, on_progress)
                return self._ingest(list(self.settings.corpus), False, show_progress, on_progress)

    def _ready(self) -> None:
        """Per request: move to the version an ingest published meanwhile; refuse an unusable index."""
        with _store_errors():
            self.index.sync()
            if self.index.version is not None:
                check_embedder(self.index.version, self.embedder.name)
            self.index.load()
        if not self.index.chunks:
            raise EmptyIndex("The index is empty. Run `rag ingest` first (it indexes the bundled interviews).")

    # ------------------------------------------------------------------ questions

    def search(self, question: str, k: int | None = None, speaker: str | None = None,
               source: str | None = None, *, interface: str = "python", request_id: str | None = None,
               ) -> SearchResult:
        """`speaker` keeps one person's words, `source` one document (a file name of the index).
        `interface` and `request_id` go into the request's log line (`rag.logs`)."""
        with RequestLog("search", interface, request_id) as request:
            started = time.perf_counter()
            result = self._search(clean_question(question), k, speaker, source)
            request.searched(result, {"retrieval": _ms(started)})
            return result

    def _search(self, question: str, k: int | None, speaker: str | None, source: str | None,
                translations: Sequence[str] = ()) -> SearchResult:
        """`translations` are searched too (LLM query expansion)."""
        k = self.settings.top_k if k is None else k
        if not 1 <= k <= MAX_K:
            raise UserError(f"k (passages per answer) must be between 1 and {MAX_K}; got {k:,}.")
        self._ready()
        return self.retriever.search(question, k, speaker, source, translations)

    def ask_stream(self, question: str, history: Sequence[ChatMessage] = (), k: int | None = None,
                   speaker: str | None = None, source: str | None = None, *, interface: str = "python",
                   request_id: str | None = None) -> Iterator[Event]:
        """Retrieved, then TextDeltas, then Completed (see `rag.events`); one log line at the end."""
        with RequestLog("ask", interface, request_id) as request:
            for event in self._ask_stream(question, history, k, speaker, source):
                if isinstance(event, Retrieved):
                    request.searched(event.result, event.timings_ms)
                elif isinstance(event, Completed):
                    event.answer.request_id = request.request_id
                    request.answered(event.answer)
                yield event

    def _ask_stream(self, question: str, history: Sequence[ChatMessage], k: int | None, speaker: str | None,
                    source: str | None) -> Iterator[Event]:
        question = clean_question(question)
        started = time.perf_counter()
        searched, rewritten_by = self.condenser.condense(question, history)
        condensed = time.perf_counter()
        translations = self.translator.translations(searched) if self.translator else []
        expanded = time.perf_counter()
        result = self._search(searched, k, speaker, source, translations)
        result.plan.rewritten_by = rewritten_by
        timings = {"condense": (condensed - started) * 1000, "expansion": (expanded - condensed) * 1000,
                   "retrieval": _ms(expanded)}
        yield Retrieved(question, result, timings)
        for event in self.answer_stream(result, question):
            if isinstance(event, Completed):
                event.answer.timings_ms.update(timings)
            yield event

    def ask(self, question: str, history: Sequence[ChatMessage] = (), k: int | None = None,
            speaker: str | None = None, source: str | None = None, *, interface: str = "python",
            request_id: str | None = None) -> Answer:
        return final_answer(self.ask_stream(question, history, k, speaker, source, interface=interface,
                                            request_id=request_id))

    def answer(self, result: SearchResult, question: str | None = None) -> Answer:
        """Answer from passages already retrieved (the eval feeds other retrievers' results here)."""
        return final_answer(self.answer_stream(result, question))

    def answer_stream(self, result: SearchResult, question: str | None = None) -> Iterator[TextDelta | Completed]:
        question = question or result.plan.question
        language = detect_language(question)
        started = time.perf_counter()

        def finish(answerer: Answerer, text: str, abstained: bool, fallback: str | None = None, **parts) -> Completed:
            answer = Answer(question, text, abstained, parts.get("citations", []), result.passages,
                            backend=answerer.name, confidence=result.confidence, claims=parts.get("claims", []),
                            invalid_citations=parts.get("invalid", []), fallback=fallback, query=result.plan,
                            model=answerer.model, check=check.to_json() if check else None,
                            timings_ms={"answer": _ms(started), **timings, **parts.get("timings", {})})
            return Completed(answer)

        check = None
        timings: dict[str, float] = {}
        covered = bool(result.passages) and result.confidence >= self.settings.min_confidence
        if covered and self.checker is not None:
            check = self.checker.check(result)
            timings["check"] = check.ms
            covered = check.states_answer is not False
        if not covered:
            text = abstention(result.plan, language)
            yield TextDelta(text)
            yield finish(self.answerer, text, True)
            return

        fallback = None
        try:
            outcome = yield from self._write(self.answerer, result, language, started, timings)
        except Exception as exc:  # an LLM failure must never cost the user their answer
            if self.answerer is self.extractive:
                raise
            fallback = describe_failure(exc, self.answerer.backend, self.settings)
            log.warning("%s answer failed, falling back to quotes: %s", self.answerer.name, fallback,
                        exc_info=log.isEnabledFor(logging.DEBUG))
            outcome = None
        if outcome == NOT_COVERED:
            text = abstention(result.plan, language)
            yield TextDelta(text, replace=True)
            yield finish(self.answerer, text, True)
            return
        if outcome is not None and not outcome.citations:
            fallback = "the model's answer cited none of the passages"
        if fallback is not None:
            outcome = yield from self._write(self.extractive, result, language, started, timings, "fallback_")
        yield finish(self.answerer if fallback is None else self.extractive, outcome.text, False, fallback,
                     citations=outcome.citations, claims=outcome.claims, invalid=outcome.invalid, timings=timings)

    def _write(self, answerer: Answerer, result: SearchResult, language: str, started: float,
               timings: dict[str, float], prefix: str = "") -> Generator[TextDelta, None, object]:
        """Stream one answerer's draft as safe deltas; return NOT_COVERED or the verified draft.

        Timings (ms since the answer step began) go into `timings`, keys prefixed for a fallback;
        the fallback's first delta replaces the failed draft."""
        replace = bool(prefix)
        draft = answerer.draft(result, language)
        guard = StreamGuard(len(draft.sources), hold_prefix=NOT_COVERED if answerer is not self.extractive else "")
        for delta in draft.deltas:
            timings.setdefault(prefix + "first_token", _ms(started))
            if shown := guard.feed(delta):
                yield TextDelta(shown, replace=replace)
                replace = False
        generated = time.perf_counter()
        timings[prefix + "generation"] = (generated - started) * 1000
        if guard.raw.strip().upper().startswith(NOT_COVERED):
            return NOT_COVERED
        verified = verify(guard.raw, draft.sources, self.support)
        if rest := guard.finish(verified.text):
            yield TextDelta(rest, replace=replace)
        timings[prefix + "verification"] = _ms(generated)
        return verified

    @shared_cached_property
    def support(self) -> SupportChecker:
        """The citation check, built on first use from the index (its bridge, its sentences)."""
        bridge = self.index.lexical.extras.get("bridge", {})
        texts = [chunk.text for chunk in self.index.chunks.values()]
        return SupportChecker(self.embedder, CorpusResources(bridge, texts), bundled_thresholds(),
                              Path(self.settings.data_dir) / "support-cache")


def final_answer(events: Iterator[Event]) -> Answer:
    """The verified Answer at the end of a stream."""
    final = None
    for event in events:
        if isinstance(event, Completed):
            final = event.answer
    if final is None:
        raise RuntimeError("answer stream ended without an answer")
    return final

