"""The dense index: chunks and their vectors in a Chroma collection.

Embedded (`PersistentClient` in the data directory) by default; a Chroma server when a host is
configured. We always hand Chroma our own vectors: its default embedding function would try to
download a model. The collection records which embedder built it, and refuses any other.
A second collection, `<name>-windows`, holds the vectors of each chunk's sentence windows,
keyed `<chunk id>:<n>` with the owning chunk in their metadata.
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
        self._open_collections()

    def _open_collections(self) -> None:
        self._collection, self._windows = (
            self._client.get_or_create_collection(
                name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
            for name in (self.name, f"{self.name}-windows")
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
        for collection in (self._collection, self._windows):
            self._client.delete_collection(collection.name)
        self._open_collections()

    # --- contents

    def count(self) -> int:
        return self._collection.count()

    def ids_for_source(self, source: str) -> set[str]:
        return set(self._collection.get(where={"source": source}, include=[])["ids"])

    def add(self, chunks: list[Chunk], vectors: np.ndarray, documents: list[str]) -> None:
        _upsert(self._collection, [c.id for c in chunks], vectors, documents, [chunk_metadata(c) for c in chunks])

    def delete(self, ids: list[str]) -> None:
        """Delete chunks and their windows."""
        for i in range(0, len(ids), _ADD_BATCH):
            part = ids[i : i + _ADD_BATCH]
            self._windows.delete(where={"chunk_id": {"$in": part}})
            self._collection.delete(ids=part)

    def add_windows(self, owners: list[Chunk], vectors: np.ndarray, documents: list[str]) -> None:
        """Store window vectors; `owners[i]` is the chunk of window i, in window order."""
        ids, seen = [], {}
        for owner in owners:
            seen[owner.id] = seen.get(owner.id, -1) + 1
            ids.append(f"{owner.id}:{seen[owner.id]}")
        _upsert(self._windows, ids, vectors, documents, [{"chunk_id": o.id, "source": o.source} for o in owners])

    def prune_windows(self, source: str) -> int:
        """Delete the source's windows whose chunk is not held (an ingest stopped between
        storing the two). Per source: another client's ingest of other files is not touched."""
        held = self.ids_for_source(source)
        got = self._windows.get(where={"source": source}, include=["metadatas"])
        orphans = [i for i, m in zip(got["ids"], got["metadatas"]) if m["chunk_id"] not in held]
        for i in range(0, len(orphans), _ADD_BATCH):
            self._windows.delete(ids=orphans[i : i + _ADD_BATCH])
        return len(orphans)

    def window_vectors(self) -> tuple[list[str], np.ndarray]:
        """Every window's owning chunk id and vector."""
        got = self._windows.get(include=["metadatas", "embeddings"])
        owners = [m["chunk_id"] for m in got["metadatas"]]
        return owners, np.asarray(got["embeddings"], dtype=np.float32).reshape(len(owners), -1)

    def all_chunks(self) -> list[Chunk]:
        got = self._collection.get(include=["metadatas"])
        return [chunk_from_metadata(i, m) for i, m in zip(got["ids"], got["metadatas"])]

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        got = self._collection.get(ids=ids, include=["embeddings"])
        return {i: np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], got["embeddings"])}


def _upsert(collection: chromadb.Collection, ids: list[str], vectors: np.ndarray, documents: list[str],
            metadatas: list[dict]) -> None:
    for i in range(0, len(ids), _ADD_BATCH):
        part = slice(i, i + _ADD_BATCH)
        collection.upsert(ids=ids[part], embeddings=vectors[part], documents=documents[part], metadatas=metadatas[part])
