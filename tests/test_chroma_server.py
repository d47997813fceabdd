"""The index in a real Chroma server (`chroma run` on 127.0.0.1), as a deployment that outgrows
one machine would run it: ingest, windows, search and re-ingest through `RAG_CHROMA_HOST`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from rag.factory import build_pipeline
from rag.settings import Settings
from tests.conftest import CORPUS_FILES, free_port, window_owners


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    chroma = Path(sys.executable).with_name("chroma")
    server = subprocess.Popen([str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the Chroma server did not start")
                time.sleep(0.3)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_ingest_and_search_through_a_chroma_server(chroma_server, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS_FILES[4], corpus / CORPUS_FILES[4].name)
    settings = Settings(data_dir=tmp_path / "data", corpus=[corpus], chroma_host="127.0.0.1", chroma_port=chroma_server)
    pipe = build_pipeline(settings)
    report = pipe.ingest(show_progress=False)
    assert report.added > 10 and not report.errors
    assert not settings.index_path.exists()  # nothing embedded on local disk: the server holds it
    assert window_owners(pipe.index) == set(pipe.index.chunks)

    # another client (another machine, in a deployment) sees the same index and reuses it
    other_settings = settings.model_copy(update={"data_dir": tmp_path / "other"})
    other = build_pipeline(other_settings)
    assert other.ingest(show_progress=False).added == 0
    question = "Amanda怎么介绍宪法式AI？"
    result = other.search(question, k=3)
    assert any("宪法式AI" in p.chunk.text for p in result.passages)
    assert other.ask(question).citations

    # each client keeps a snapshot of the server's version: the ingesting one wrote it, the other
    # read the server once and saved it; both start from it, with the same results
    version = pipe.index.version.name
    assert [p.name for p in (tmp_path / "data" / "snapshots").iterdir()] == [version]
    assert [p.name for p in (tmp_path / "other" / "snapshots").iterdir()] == [version]
    restarted = build_pipeline(other_settings)
    assert isinstance(restarted.index.snapshot.vectors, np.memmap)
    assert [(p.chunk.id, p.score) for p in restarted.search(question, k=3).passages] == \
        [(p.chunk.id, p.score) for p in result.passages]
