"""The dense index: chunks and their vectors in a Chroma collection.

Embedded (`PersistentClient` in the data directory) by default; a Chroma server when a host is
configured. We always hand Chroma our own vectors: its default embedding function would try to
download a model. The collection records which embedder built it, and refuses any other.
"""

from __future__ import annotations

from pathlib import Path

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

from rag.models import Chunk, chunk_from_metadata, chunk_metadata

_ADD_BATCH = 500


class EmbedderMismatch(RuntimeError):
    """The index was built by another embedder; vectors from two models are not comparable."""


class ChromaIndex:
    def __init__(self, client: chromadb.ClientAPI, name: str):
        self._client = client
        self.name = name
        self._collection = client.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )

    @classmethod
    def open(cls, name: str, path: Path | None = None, host: str | None = None, port: int = 8000) -> "ChromaIndex":
        settings = ChromaSettings(anonymized_telemetry=False)
        if host:
            client = chromadb.HttpClient(host=host, port=port, settings=settings)
        else:
            assert path is not None
            path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(path), settings=settings)
        return cls(client, name)

    # --- which embedder built it

    @property
    def embedder_name(self) -> str | None:
        return (self._collection.metadata or {}).get("embedder")

    def check_embedder(self, embedder_name: str) -> None:
        built = self.embedder_name
        if built and built != embedder_name:
            raise EmbedderMismatch(
                f"The index {self.name!r} was built with the embedder {built!r}, but the current "
                f"setting is {embedder_name!r}. Re-ingest with the current embedder "
                "(`rag ingest --rebuild`) or switch the setting back."
            )

    def claim(self, embedder_name: str) -> None:
        """Record the embedder on a new (empty) collection."""
        self.check_embedder(embedder_name)
        if not self.embedder_name:
            self._collection.modify(metadata={"embedder": embedder_name})

    def reset(self) -> None:
        self._client.delete_collection(self.name)
        self._collection = self._client.get_or_create_collection(
            self.name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )

    # --- contents

    def count(self) -> int:
        return self._collection.count()

    def ids_for_source(self, source: str) -> set[str]:
        return set(self._collection.get(where={"source": source}, include=[])["ids"])

    def add(self, chunks: list[Chunk], vectors: np.ndarray, documents: list[str]) -> None:
        for i in range(0, len(chunks), _ADD_BATCH):
            part = slice(i, i + _ADD_BATCH)
            self._collection.upsert(
                ids=[c.id for c in chunks[part]],
                embeddings=vectors[part],
                documents=documents[part],
                metadatas=[chunk_metadata(c) for c in chunks[part]],
            )

    def delete(self, ids: list[str]) -> None:
        for i in range(0, len(ids), _ADD_BATCH):
            self._collection.delete(ids=ids[i : i + _ADD_BATCH])

    def all_chunks(self) -> list[Chunk]:
        got = self._collection.get(include=["metadatas"])
        return [chunk_from_metadata(i, m) for i, m in zip(got["ids"], got["metadatas"])]

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        got = self._collection.get(ids=ids, include=["embeddings"])
        return {i: np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], got["embeddings"])}
