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
from .ingest import FileLimits, IngestReport, ingest, ingest_lock, outdated, reembed_outdated
from .models import Answer
from .retrieval import HybridRetriever, SearchResult
from .settings import Settings
from vectorstore.store import StoreError, check_embedder


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
        """Index `paths` (default: the configured corpus); refused while another ingest runs."""
        with _store_errors(), ingest_lock(self.settings.data_dir, wait=False):
            return self._ingest(paths or list(self.settings.corpus), rebuild, show_progress)

    def _ingest(self, paths: list[Path], rebuild: bool, show_progress: bool) -> IngestReport:
        limits = FileLimits(
            max_bytes=int(self.settings.max_file_mb * 1e6),
            roots=tuple(p.resolve() for p in self.settings.ingest_roots + self.settings.corpus)
            if self.settings.ingest_roots else (),
        )
        return ingest(paths, self.index, self.embedder, self.settings.chunk_tokens, limits, show_progress, rebuild)

    def ensure_ingested(self, show_progress: bool = True) -> IngestReport | None:
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
                    return reembed_outdated(self.index, self.embedder, show_progress)
                return self._ingest(list(self.settings.corpus), False, show_progress)

    def _ready(self) -> None:
        """Per request: move to the version an ingest published meanwhile; refuse an unusable index."""
        with _store_errors():
            self.index.sync()
            if self.index.version is not None:
                check_embedder(self.index.version, self.embedder.name)
            self.index.load()
        if not self.index.chunks:
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
