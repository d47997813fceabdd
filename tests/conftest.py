"""Shared fixtures: the real pipeline (e5 embedder, Chroma on disk) over the bundled corpus,
indexed once per test session in a temporary data directory.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.index.e5_convert import converted_model_dir
from rag.factory import build_pipeline
from rag.pipeline import Pipeline
from rag.settings import BUNDLED_CORPUS, Settings

CORPUS_FILES = sorted(BUNDLED_CORPUS.glob("*.txt"))


def free_port() -> int:
    """A port nothing listens on now, for a server a test starts on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


INDEXED = {"data_dir", "settings", "pipeline", "cli_env"}  # fixtures that build the bundled corpus's index


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what needs the bundled corpus indexed (minutes on 2 cores): `-m "not indexed"` skips them."""
    for item in items:
        if INDEXED & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.indexed)


def indexed_pipeline(corpus: Path, data_dir: Path) -> tuple[Pipeline, Settings]:
    """A private pipeline over `corpus`, indexed in `data_dir`."""
    settings = Settings(data_dir=data_dir, corpus=[corpus])
    pipe = build_pipeline(settings)
    pipe.ingest(show_progress=False)
    return pipe, settings


def window_owners(index) -> set[str]:
    """The chunks that have sentence windows in the index's current version."""
    return set(index.version.window_vectors()[0])


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Iterator[Path]:
    """One model cache for the whole session (the e5 conversion runs at most once), set in the
    environment so every `Settings()` and `rag` subprocess uses it and none writes to ~/.cache."""
    cache = tmp_path_factory.mktemp("model-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAG_MODEL_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="session")
def e5_model_dir(model_cache: Path) -> Path:
    """The converted e5 sentence-transformers directory, converted once per session."""
    return converted_model_dir(model_cache)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A fresh data dir per session; RAG_TEST_DATA_DIR keeps one across local runs (the first
    run builds the index, later runs re-ingest nothing), which CI never sets."""
    kept = os.environ.get("RAG_TEST_DATA_DIR")
    return Path(kept) if kept else tmp_path_factory.mktemp("rag-data")


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


@pytest.fixture(scope="session")
def pipeline(settings: Settings) -> Pipeline:
    pipe = build_pipeline(settings)
    report = pipe.ingest(show_progress=False)
    assert not report.errors and len(pipe.index.chunks) > 500
    return pipe


@pytest.fixture(scope="session")
def cli_env(data_dir: Path, pipeline: Pipeline) -> dict[str, str]:
    """Environment for running the `rag` command against the session's index."""
    return {**os.environ, "RAG_DATA_DIR": str(data_dir)}
