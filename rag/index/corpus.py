"""The corpus index: the store's current version, the lexical index derived from it, and chunk lookups.

The vector store is the source of truth; the BM25 index and the dictionary bridge are derived
from the chunks it holds and rebuilt only when those chunks change, and a snapshot of each
version's rows (`vectorstore.snapshot`) lets a reader start without reading them out of the
store. `sync()` moves a long-running reader to the version an ingest (in any process) published last.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from rag.caching import shared_cached_property
from rag.lexicon import dictionary_bridge, english_glosses, tokenize
from rag.models import Chunk, chunk_from_metadata
from vectorstore.embedding_cache import EmbeddingCache
from vectorstore.enrichment_store import EnrichmentStore
from vectorstore.lexical import BM25Index
from vectorstore.snapshot import SnapshotWriter, VersionSnapshot, forget_snapshot
from vectorstore.store import Version, VersionedStore


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def searchable_text(chunk: Chunk) -> str:
    """What both the embedder and BM25 see: the question a turn answers, then the words, in both languages.

    Part of `chunking.INDEX_RECIPE`: bump its version when this changes, or old vectors stay.
    """
    parts = [chunk.context, chunk.text, chunk.parallel_text or ""]
    return "\n".join(p for p in parts if p)


def best_rows(scores: np.ndarray, n: int, keep: Callable[[int], bool] | None = None) -> list[int]:
    """The rows of the `n` highest scores that `keep` accepts, best first, ties in row order.

    The same rows as a stable full sort, but by partial selection (O(rows) rather than
    O(rows log rows)): only the top is sorted, and widened fourfold while `keep` rejects too many.
    """
    wanted = n
    while True:
        top = _top(scores, wanted)
        rows = [int(r) for r in top if keep is None or keep(int(r))]
        if len(rows) >= n or len(top) == len(scores):
            return rows[:n]
        wanted *= 4


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    if n >= len(scores):
        return np.argsort(-scores, kind="stable")
    nth = np.partition(scores, len(scores) - n)[len(scores) - n]
    rows = np.flatnonzero(scores >= nth)  # every tie of the n-th score, so the cut is the stable sort's
    return rows[np.argsort(-scores[rows], kind="stable")][:n]


LexicalIndexes = tuple[BM25Index, BM25Index, BM25Index]  # the chunks, their English glosses, their enrichment


def build_lexical(chunks: dict[str, Chunk]) -> LexicalIndexes:
    """BM25 over the chunks' searchable text, over the English glosses of each Chinese chunk
    (empty for the bilingual file), and over each chunk's LLM enrichment (`rag.ingest.enrichment`;
    empty for chunks without)."""
    ids = sorted(chunks)
    docs = [tokenize(searchable_text(chunks[i])) for i in ids]
    vocabulary = {t for d in docs for t in d}
    # words of the single-language files: an English word found only in the bilingual
    # transcript's English lines can only ever point a question at that one file
    monolingual = sorted({t for i, d in zip(ids, docs) if not chunks[i].parallel_text for t in d})
    glosses = english_glosses(vocabulary)
    gloss_docs = [[] if chunks[i].parallel_text else [w for t in d for w in glosses.get(t, ())]
                  for i, d in zip(ids, docs)]
    lexical = BM25Index.build(ids, docs, {"bridge": dictionary_bridge(vocabulary), "monolingual": monolingual})
    enrichment_docs = [tokenize(" ".join([chunks[i].gist, *chunks[i].questions])) for i in ids]
    return lexical, BM25Index.build(ids, gloss_docs), BM25Index.build(ids, enrichment_docs)


_NOT_SYNCED = object()


class CorpusIndex:
    def __init__(self, store: VersionedStore, lexical_dir: Path, snapshot_dir: Path,
                 embedding_cache: EmbeddingCache | None = None, enrichments: EnrichmentStore | None = None):
        self.store = store
        self.lexical_dir = lexical_dir  # the BM25 indexes, three files per version
        self.snapshot_dir = snapshot_dir  # each version's rows, memory-mapped at start-up (`vectorstore.snapshot`)
        self.embedding_cache = embedding_cache  # ingest's vectors by text, kept across killed ingests
        self.enrichments = enrichments  # what an LLM wrote about chunks at ingest, by their content
        self._version: Version | None = None
        self._loaded: object = _NOT_SYNCED  # the name of the version loaded, None for no version yet
        self._switching = threading.Lock()  # threads of the web app sync at once: one of them switches

    def sync(self) -> None:
        """Load the store's current version if it is not the one loaded (one small read per call)."""
        name = self.store.current_name()
        if name == self._loaded:
            return
        with self._switching:
            if name != self._loaded:
                self._version = self.store.open(name) if name else None
                self._loaded = name
                self.refresh()

    def load(self) -> None:
        """Read the loaded version's chunks and vectors now, so a store failure shows here, not mid-search."""
        if self.version is not None:
            self.snapshot  # noqa: B018

    @property
    def version(self) -> Version | None:
        """The loaded version (None while the store has none), synced on first use."""
        if self._loaded is _NOT_SYNCED:
            self.sync()
        return self._version

    @shared_cached_property
    def snapshot(self) -> VersionSnapshot:
        """The loaded version's rows: memory-mapped from its saved snapshot, or read from the store
        when there is none (or a damaged one) and saved for the next start."""
        folder = self.snapshot_dir / self.version.name
        saved = VersionSnapshot.load(folder)
        if saved is not None:
            return saved
        snapshot = VersionSnapshot.read(self.version)
        try:
            snapshot.save(folder)
        except OSError:  # a read-only or full data folder: the next start reads the store again
            pass
        return snapshot

    @shared_cached_property
    def chunks(self) -> dict[str, Chunk]:
        if self.version is None:
            return {}
        return {i: chunk_from_metadata(i, m) for i, m in zip(self.snapshot.ids, self.snapshot.metadatas)}

    @shared_cached_property
    def sources(self) -> frozenset[str]:
        return frozenset(c.source for c in self.chunks.values())

    @property
    def lexical(self) -> BM25Index:
        return self._bm25[0]

    @property
    def glossed(self) -> BM25Index:
        """BM25 over the English glosses of each Chinese chunk (empty for the bilingual file)."""
        return self._bm25[1]

    @property
    def enriched(self) -> BM25Index:
        """BM25 over each chunk's LLM enrichment: English questions it answers and its gist."""
        return self._bm25[2]

    @shared_cached_property
    def monolingual_vocabulary(self) -> frozenset[str]:
        """Tokens of the single-language files (everything but the bilingual transcript)."""
        return frozenset(self.lexical.extras.get("monolingual", ()))

    @shared_cached_property
    def _bm25(self) -> LexicalIndexes:
        if self.version is None:
            return build_lexical({})
        return self.lexical_for(self.version.name, self.chunks)

    def lexical_for(self, version_name: str, chunks: dict[str, Chunk]) -> LexicalIndexes:
        """A version's BM25 indexes (`build_lexical`): loaded when saved for these chunks, else
        built and saved. Ingest saves them before it publishes, so readers only load."""
        paths = self._lexical_files(version_name)
        ids = sorted(chunks)
        saved = tuple(BM25Index.load(path, ids) for path in paths)
        if all(index is not None for index in saved):
            return saved
        built = build_lexical(chunks)
        for index, path in zip(built, paths):
            index.save(path)
        return built

    def forget_derived(self, version_names: list[str]) -> None:
        """Delete the saved BM25 indexes and snapshots of versions the store dropped."""
        for name in version_names:
            for path in self._lexical_files(name):
                path.unlink(missing_ok=True)
            forget_snapshot(self.snapshot_dir / name)

    def snapshot_writer(self, version_name: str, ids: list[str], windows: int, dim: int) -> SnapshotWriter:
        """A writer of `version_name`'s snapshot, which ingest fills as it writes the version."""
        return SnapshotWriter(self.snapshot_dir / version_name, ids, windows, dim)

    def _lexical_files(self, version_name: str) -> tuple[Path, Path, Path]:
        return tuple(self.lexical_dir / f"{version_name}{part}.npz" for part in ("", ".glosses", ".enrichment"))

    @shared_cached_property
    def _row(self) -> dict[str, int]:
        """Each chunk's row in the snapshot's matrices."""
        return {chunk_id: r for r, chunk_id in enumerate(self.snapshot.ids)} if self.version is not None else {}

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors by chunk id, from memory (no round trip to the store)."""
        row = self._row
        return {i: self.snapshot.vectors[row[i]] for i in ids if i in row}

    def nearest(self, queries: np.ndarray, n: int,
                allowed: Callable[[Chunk], bool] | None = None) -> list[list[tuple[str, float]]]:
        """Exact cosine search for each row of `queries`; a chunk scores its own vector or its best
        sentence window, whichever is higher.

        Exact and deterministic, unlike Chroma's approximate (HNSW) query, which returned
        different neighbours from run to run and poor ones under a metadata filter. The scan is
        bound by memory bandwidth (at 100× it reads 480 MB of vectors), so the queries of one
        search go through it together: two cost about what one does.
        """
        if not self.chunks:
            return [[] for _ in queries]
        rows = self.snapshot
        ids = rows.ids
        # one BLAS thread: OpenBLAS workers spin after a product and starved the embedder's
        # OpenMP threads on two cores (query encoding went from 8 to 32 ms)
        with _blas().limit(limits=1, user_api="blas"):
            scores = np.asarray(rows.vectors @ queries.T)
            if len(rows.window_rows):
                np.maximum.at(scores, rows.window_rows, np.asarray(rows.windows @ queries.T))
        keep = None if allowed is None else (lambda row: allowed(self.chunks[ids[row]]))
        return [[(ids[r], float(column[r])) for r in best_rows(column, n, keep)]
                for column in np.ascontiguousarray(scores.T)]

    @shared_cached_property
    def _plain_text(self) -> str:
        texts = (t for c in self.chunks.values() for t in (c.text, c.parallel_text or ""))
        return re.sub(r"\s+", " ", "\n".join(texts)).lower()

    def mentions(self, pattern: str) -> bool:
        """Whether the regex `pattern` occurs in the corpus text (lower-cased, spaces collapsed)."""
        return re.search(pattern, self._plain_text) is not None

    def refresh(self) -> None:
        """Forget every cached view after the loaded version changed (each rebuilds on next use);
        found by type, so a view added later cannot be left stale."""
        for name, attribute in vars(type(self)).items():
            if isinstance(attribute, shared_cached_property):
                self.__dict__.pop(name, None)

    @shared_cached_property
    def by_turn(self) -> dict[tuple[str, int], list[Chunk]]:
        by_turn: dict[tuple[str, int], list[Chunk]] = {}
        for c in self.chunks.values():
            by_turn.setdefault((c.source_path, c.turn_index), []).append(c)
        for group in by_turn.values():
            group.sort(key=lambda c: c.char_start)
        return by_turn

    def neighbours(self, chunk: Chunk) -> tuple[list[Chunk], list[Chunk]]:
        """The turn before and the turn after `chunk`'s turn (context for an answerer)."""
        before = self.by_turn.get((chunk.source_path, chunk.turn_index - 1), [])
        after = self.by_turn.get((chunk.source_path, chunk.turn_index + 1), [])
        return before, after
