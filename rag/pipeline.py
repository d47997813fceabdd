"""The app's front door: ingest, search, ask (whole or streamed). CLI, web, Slack and eval all
go through this object, so they behave the same.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

from .answering import Answerer, StreamItem, collect
from .embeddings import Embedder
from .errors import UserError
from .index import CorpusIndex
from .ingest import IngestReport, ingest, reembed_outdated
from .models import Answer
from .retrieval import HybridRetriever, SearchResult
from .settings import Settings
from vectorstore.chroma import EmbedderMismatch


class EmptyIndex(UserError):
    pass


@contextmanager
def _store_errors() -> Iterator[None]:
    """The store's own errors that a user acts on (its message says how) become `UserError`s."""
    try:
        yield
    except EmbedderMismatch as exc:
        raise UserError(str(exc)) from exc


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        index: CorpusIndex,
        embedder: Embedder,
        retriever: HybridRetriever,
        answerer: Answerer,
    ):
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.retriever = retriever
        self.answerer = answerer

    def ingest(self, paths: list[Path] | None = None, rebuild: bool = False, show_progress: bool = True) -> IngestReport:
        with _store_errors():
            if rebuild:
                self.index.store.reset()
                self.index.refresh()
            return ingest(paths or list(self.settings.corpus), self.index, self.embedder,
                          self.settings.chunk_tokens, show_progress)

    def ensure_ingested(self, show_progress: bool = True) -> IngestReport | None:
        """Build the index from the configured corpus on first use; renew what older code stored."""
        if self.index.store.count():
            return reembed_outdated(self.index, self.embedder, show_progress)
        return self.ingest(show_progress=show_progress)

    def _ready(self) -> None:
        with _store_errors():
            self.index.store.check_embedder(self.embedder.name)
        if not self.index.store.count():
            raise EmptyIndex("The index is empty. Run `rag ingest` first (it indexes the bundled interviews).")

    def search(self, question: str, k: int | None = None, speaker: str | None = None) -> SearchResult:
        self._ready()
        return self.retriever.search(question, k or self.settings.top_k, speaker)

    def ask_stream(self, question: str, k: int | None = None, speaker: str | None = None) -> Iterator[StreamItem]:
        started = time.perf_counter()
        result = self.search(question, k, speaker)
        retrieval_ms = (time.perf_counter() - started) * 1000
        for item in self.answerer.answer_stream(result):
            if isinstance(item, Answer):
                item.timings_ms["retrieval"] = retrieval_ms
                item.confidence = result.confidence
            yield item

    def ask(self, question: str, k: int | None = None, speaker: str | None = None) -> Answer:
        return collect(self.ask_stream(question, k, speaker))
