"""The SQLite files beside the index (embedding cache, enrichments) work from any thread: `rag serve`
ingests in a background thread, and a later ingest may run in another."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from vectorstore.embedding_cache import EmbeddingCache
from vectorstore.enrichment_store import EnrichmentStore


def in_another_thread(call):
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def test_embedding_cache_written_in_one_thread_is_read_and_written_in_another(tmp_path):
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    cache.put("e5", ["一句话"], np.ones((1, 4), dtype=np.float32))
    found = in_another_thread(lambda: cache.get("e5", ["一句话", "another"]))
    assert list(found) == [0] and np.allclose(found[0], 1.0)
    in_another_thread(lambda: cache.put("e5", ["another"], np.zeros((1, 4), dtype=np.float32)))
    assert sorted(cache.get("e5", ["一句话", "another"])) == [0, 1]


def test_enrichment_store_written_in_one_thread_is_read_in_another(tmp_path):
    store = EnrichmentStore(tmp_path / "enrichments.sqlite")
    assert store.get(["k"]) == {} and not store.path.exists()  # never enriched: no file is made
    in_another_thread(lambda: store.put("k", {"gist": "A gist."}))
    assert store.get(["k"]) == {"k": {"gist": "A gist."}}
