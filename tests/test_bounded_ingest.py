"""Ingest in bounded batches and query paths that scale, with real Chroma in a temporary folder:
an interrupted ingest keeps the published index and its embedded batches, reads come in pages,
the BM25 index and the version's snapshot are loaded as saved (the store read instead when the
snapshot is missing or damaged), top-k is a partial selection equal to the full sort."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import rag.index.corpus
from rag.ingest import build as ingest_module
from rag.factory import build_index, build_pipeline
from rag.index.corpus import best_rows, searchable_text
from tests.conftest import indexed_pipeline
from tests.test_faults import write_talks
from vectorstore import chroma
from vectorstore.snapshot import VersionSnapshot

QUESTION = "What did Alice say about sycophancy?"


class Interrupted(Exception):
    pass


def assert_snapshot_is_the_store(index) -> None:
    """The loaded version's snapshot holds exactly the rows the store holds (windows in any order)."""
    snapshot, stored = index.snapshot, VersionSnapshot.read(index.version)
    assert snapshot.ids == stored.ids and snapshot.metadatas == stored.metadatas
    np.testing.assert_allclose(snapshot.vectors, stored.vectors, atol=1e-6)

    def windows(rows: VersionSnapshot) -> np.ndarray:
        table = np.column_stack([rows.window_rows, rows.windows])
        return table[np.lexsort(table.T[::-1])]

    np.testing.assert_allclose(windows(snapshot), windows(stored), atol=1e-6)


class CountingEmbedder:
    """The pipeline's embedder, counting the texts it embeds; fails on call `fail_on` (a kill mid-ingest)."""

    def __init__(self, embedder, fail_on: int | None = None):
        self.inner, self.fail_on = embedder, fail_on
        self.name, self.dim = embedder.name, embedder.dim
        self.calls = self.texts = 0

    def encode_documents(self, texts, progress=None):
        self.calls += 1
        if self.calls == self.fail_on:
            raise Interrupted
        self.texts += len(texts)
        return self.inner.encode_documents(texts, progress)

    def encode_query(self, text):
        return self.inner.encode_query(text)


@pytest.fixture
def talks(tmp_path: Path, monkeypatch):
    """Two small talks indexed in batches of ~12 passages, read back in pages of 7 rows."""
    monkeypatch.setattr(ingest_module, "BATCH_PASSAGES", 12)
    monkeypatch.setattr(chroma, "_PAGE", 7)
    corpus = tmp_path / "corpus"
    write_talks(corpus, talks=2, turns=12)
    pipe, settings = indexed_pipeline(corpus, tmp_path / "data")
    return pipe, corpus, settings


def test_an_interrupted_ingest_keeps_the_published_index_and_the_next_one_embeds_only_what_it_had_not(talks):
    pipe, corpus, settings = talks
    before = pipe.search(QUESTION).passages
    write_talks(corpus / "more", talks=2, turns=12)
    for path in (corpus / "more").iterdir():
        path.write_text(path.read_text(encoding="utf-8").replace("Point", "Remark"), encoding="utf-8")

    killed = CountingEmbedder(pipe.embedder, fail_on=3)
    pipe.embedder = killed
    with pytest.raises(Interrupted):
        pipe.ingest(show_progress=False)
    assert killed.texts >= 20  # two batches were embedded before the failure

    reader = build_pipeline(settings)  # another process: the published version, whole
    assert [(p.chunk.id, p.score) for p in reader.search(QUESTION).passages] == [(p.chunk.id, p.score) for p in before]

    resumed = CountingEmbedder(killed.inner)
    pipe.embedder = resumed
    report = pipe.ingest(show_progress=False)
    added_passages = report.added + sum(len(ingest_module.window_texts(c)) for c in pipe.index.chunks.values()
                                        if "more" in c.source_path)
    assert resumed.texts == added_passages - killed.texts  # the finished batches came from the cache

    fresh, _ = indexed_pipeline(corpus, settings.data_dir.parent / "fresh")
    assert sorted(fresh.index.chunks) == sorted(pipe.index.chunks)
    ids = sorted(fresh.index.chunks)
    np.testing.assert_allclose(np.stack(list(fresh.index.vectors(ids).values())),
                               np.stack(list(pipe.index.vectors(ids).values())), atol=1e-6)
    assert len(pipe.index.version.window_vectors()[0]) == len(fresh.index.version.window_vectors()[0])
    assert_snapshot_is_the_store(pipe.index)  # base rows copied, new ones in batches


def test_a_file_whose_text_moved_is_re_indexed_without_embedding_anything(talks):
    pipe, corpus, _ = talks
    path = corpus / "talk0.md"
    path.write_text("\n\n\n" + path.read_text(encoding="utf-8"), encoding="utf-8")  # every offset shifts
    counting = CountingEmbedder(pipe.embedder)
    pipe.embedder = counting
    report = pipe.ingest(show_progress=False)
    assert report.added == report.removed == 12  # new chunk ids (offsets are part of them) …
    assert counting.texts == 0  # … over the same texts
    assert all(c.char_start >= 3 for c in pipe.index.chunks.values() if c.source == "talk0.md")
    assert_snapshot_is_the_store(pipe.index)


def test_a_rebuild_prunes_the_cache_to_the_passages_it_holds(talks):
    pipe, corpus, _ = talks
    (corpus / "talk1.md").unlink()
    pipe.ingest(rebuild=True, show_progress=False)
    chunks = pipe.index.chunks.values()
    held = {searchable_text(c) for c in chunks} | {w for c in chunks for w in ingest_module.window_texts(c)}
    assert {c.source for c in chunks} == {"talk0.md"}
    assert pipe.index.embedding_cache.db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == len(held)
    assert_snapshot_is_the_store(pipe.index)


def test_paged_reads_return_every_row(talks):
    pipe, _, _ = talks
    ids, metadatas = pipe.index.version.records()
    assert len(ids) == len(set(ids)) == len(metadatas) == pipe.index.version.count() == 24  # > 3 pages of 7
    owners, vectors = pipe.index.version.window_vectors()
    assert vectors.shape == (len(owners), pipe.embedder.dim) and set(owners) == set(ids)
    assert set(pipe.index.version.vectors(ids)) == set(ids)


def test_ingest_saves_the_bm25_index_so_start_up_loads_it_and_dropped_versions_take_theirs_along(talks, monkeypatch):
    pipe, corpus, settings = talks

    def no_tokenizing(text):
        raise AssertionError("the BM25 index was rebuilt")

    with monkeypatch.context() as patch:
        patch.setattr(rag.index.corpus, "tokenize", no_tokenizing)
        index = build_index(settings)  # a new process's start-up, right after the ingest
        loaded = index.lexical, index.glossed
    built = rag.index.corpus.build_lexical(pipe.index.chunks)
    for saved, fresh in zip(loaded, built):
        assert saved.ids == fresh.ids and (saved.matrix != fresh.matrix).nnz == 0
        assert saved.df == fresh.df and saved.extras == fresh.extras
    assert [p.chunk.id for p in build_pipeline(settings).search(QUESTION).passages] == \
        [p.chunk.id for p in pipe.search(QUESTION).passages]

    for turn in range(3):  # three more versions; the store keeps the current one and the one before
        (corpus / f"extra{turn}.md").write_text(f"Carol: Extra point {turn} about zebrafish.\n", encoding="utf-8")
        pipe.ingest(show_progress=False)
    kept = {pipe.index.version.name, pipe.index.store._pointer()["previous"]}
    assert {p.name.split(".npz")[0].removesuffix(".glosses").removesuffix(".enrichment") for p in settings.data_dir.joinpath("lexical").iterdir()} == kept
    assert {p.name for p in settings.data_dir.joinpath("snapshots").iterdir()} == kept


def results(pipe) -> list[tuple[str, float]]:
    return [(p.chunk.id, p.score) for q in (QUESTION, "Why does red teaming matter?", "谈到了什么？")
            for p in pipe.search(q).passages]


def store_reads(monkeypatch) -> list[str]:
    """The names of the whole-version reads of the store made from now on."""
    reads = []
    for name in ("records", "vectors", "window_vectors"):
        def counted(self, *args, _name=name, _read=getattr(chroma.ChromaVersion, name)):
            reads.append(_name)
            return _read(self, *args)
        monkeypatch.setattr(chroma.ChromaVersion, name, counted)
    return reads


def test_start_up_maps_the_snapshot_ingest_saved_and_searches_exactly_as_from_the_store(talks, monkeypatch):
    pipe, _, settings = talks
    assert_snapshot_is_the_store(pipe.index)
    reads = store_reads(monkeypatch)
    reader = build_pipeline(settings)  # a new process's start-up, right after the ingest
    mapped = results(reader)
    assert reads == [] and isinstance(reader.index.snapshot.vectors, np.memmap)

    folder = settings.data_dir / "snapshots" / reader.index.version.name
    for damage in ("missing", "cut short"):
        if damage == "missing":
            shutil.rmtree(folder)
        else:
            (folder / "windows.f32").write_bytes((folder / "windows.f32").read_bytes()[:-100])
        from_store = build_pipeline(settings)
        assert results(from_store) == mapped and not isinstance(from_store.index.snapshot.vectors, np.memmap)
        assert sorted(reads) == ["records", "vectors", "window_vectors"]  # read the store instead …
        reads.clear()
        assert results(build_pipeline(settings)) == mapped and reads == []  # … and saved a new snapshot


@pytest.mark.parametrize("n", [1, 5, 40, 999])
def test_top_rows_by_partial_selection_equal_a_stable_full_sort(n):
    rng = np.random.default_rng(n)
    scores = rng.integers(0, 50, 1000).astype(np.float32)  # many ties
    order = np.argsort(-scores, kind="stable")
    assert best_rows(scores, n) == order[:n].tolist()

    def rare(row: int) -> bool:  # a filter that rejects most rows
        return row % 97 == 0

    assert best_rows(scores, n, rare) == [r for r in order if rare(r)][:n]
