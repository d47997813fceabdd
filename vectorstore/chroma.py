"""The dense index in Chroma: one pair of collections per version, and a pointer to the current one.

Embedded (`PersistentClient` in a folder) by default; a Chroma server when a host is given.
A version `<name>.v<stamp>` holds the chunks and their vectors; `<name>.v<stamp>.windows` the
vectors of each chunk's sentence windows, keyed `<chunk id>:<n>` with the owning chunk in their
metadata. The pointer is the metadata of the collection `<name>.pointer` (current and previous
version), so switching versions is one write that Chroma makes atomic, in both modes.

Embedded Chroma is not safe for two processes writing one folder; here only the ingest that
holds the ingest lock writes, and only to a draft no reader has opened, so readers in other
processes only ever read finished collections.
We always hand Chroma our own vectors: its default embedding function would try to download a model.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path

import chromadb
import httpx
import numpy as np
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import ChromaError, InternalError, NotFoundError

from .store import StoreError

_ADD_BATCH = 500
_PAGE = 5000  # rows per read: a large index is read in pages, never in one call
SERVER_RETRY_DELAYS = (0.5, 1.0, 2.0)  # seconds before each new attempt at an unreachable server
_WINDOWS = ".windows"


def _guarded(method):
    """Run a store operation with its store's retries, turning Chroma's failures into a `StoreError`."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        store = getattr(self, "_store", self)
        return store.run(lambda: method(self, *args, **kwargs))

    return run


class ChromaStore:
    def __init__(self, connect: Callable[[], chromadb.ClientAPI], name: str, location: str, server: bool):
        self._connect = connect
        self.name = name
        self.location = location
        self._server = server

    @classmethod
    def embedded(cls, path: Path, name: str) -> "ChromaStore":
        failed: list[ChromaError] = []

        def connect() -> chromadb.ClientAPI:
            if failed:  # Chroma keeps a half-built client for the path: a second try fails obscurely
                raise failed[0]
            path.mkdir(parents=True, exist_ok=True)
            try:
                return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))
            except ChromaError as exc:
                failed.append(exc)
                raise

        return cls(connect, name, str(path), server=False)

    @classmethod
    def server(cls, host: str, port: int, name: str, timeout: float = 30.0) -> "ChromaStore":
        """Chroma's HttpClient waits forever for a server that accepts connections and never
        answers; every request here, the client's own included, gives up after `timeout` seconds."""
        def connect() -> chromadb.ClientAPI:
            # the client's constructor already sends requests: a hung server must fail before it
            httpx.get(f"http://{host}:{port}/api/v2/heartbeat", timeout=timeout).raise_for_status()
            client = chromadb.HttpClient(host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False))
            session = getattr(getattr(client, "_server", None), "_session", None)
            if isinstance(session, httpx.Client):  # Chroma builds it with timeout=None
                session.timeout = httpx.Timeout(timeout)
            return client

        return cls(connect, name, f"http://{host}:{port}", server=True)

    @cached_property
    def _client(self) -> chromadb.ClientAPI:
        return self._connect()

    def run(self, operation: Callable):
        """`operation()`, retried with backoff while a server is unreachable; failures as `StoreError`."""
        delays = SERVER_RETRY_DELAYS if self._server else ()
        for attempt in range(len(delays) + 1):
            try:
                return operation()
            except (httpx.TransportError, ValueError, InternalError, NotFoundError) as exc:
                # Chroma's HttpClient says a server is down with a ValueError; any other is a bug
                unreachable = isinstance(exc, httpx.TransportError) or "Could not connect" in str(exc)
                if isinstance(exc, ValueError) and not unreachable:
                    raise
                if unreachable and attempt < len(delays):
                    time.sleep(delays[attempt])
                    continue
                raise StoreError(self._explain(exc, unreachable)) from exc

    def _explain(self, exc: Exception, unreachable: bool) -> str:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if unreachable:
            return (f"Cannot reach the Chroma server at {self.location} ({reason}). Start it, or unset "
                    "RAG_CHROMA_HOST to use the embedded store.")
        if self._server:
            return f"The Chroma server at {self.location} failed: {reason}."
        return (f"The index store at {self.location} cannot be read ({reason}). Restore that folder from a "
                "backup, or move it aside and run `rag ingest` to build the index again.")

    # --- the pointer

    def _pointer(self) -> dict:
        try:
            return self._client.get_collection(f"{self.name}.pointer").metadata or {}
        except NotFoundError:
            return {}

    @_guarded
    def current_name(self) -> str | None:
        return self._pointer().get("current") or None

    @_guarded
    def publish(self, draft: "ChromaVersion") -> None:
        previous = self._pointer().get("current") or ""
        pointer = self._client.get_or_create_collection(f"{self.name}.pointer", embedding_function=None)
        pointer.modify(metadata={"current": draft.name, "previous": previous})

    # --- versions

    @_guarded
    def open(self, name: str) -> "ChromaVersion":
        return ChromaVersion(self, self._client.get_collection(name), self._client.get_collection(name + _WINDOWS))

    @_guarded
    def draft(self, embedder_name: str) -> "ChromaVersion":
        name = f"{self.name}.v{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        chunks, windows = (
            self._client.create_collection(
                n, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
                metadata={"embedder": embedder_name},
            )
            for n in (name, name + _WINDOWS)
        )
        return ChromaVersion(self, chunks, windows)

    @_guarded
    def collect_garbage(self) -> list[str]:
        pointer = self._pointer()
        keep = {pointer.get("current"), pointer.get("previous")}
        dropped = set()
        for collection in self._client.list_collections():
            version = collection.name.removesuffix(_WINDOWS)
            if collection.name.startswith(f"{self.name}.v") and version not in keep:
                self._client.delete_collection(collection.name)
                dropped.add(version)
        return sorted(dropped)


class ChromaVersion:
    def __init__(self, store: ChromaStore, chunks: chromadb.Collection, windows: chromadb.Collection):
        self._store = store
        self._chunks = chunks
        self._windows = windows
        self.name = chunks.name

    @property
    def embedder_name(self) -> str | None:
        return (self._chunks.metadata or {}).get("embedder")

    @_guarded
    def count(self) -> int:
        return self._chunks.count()

    @_guarded
    def records(self) -> tuple[list[str], list[dict]]:
        ids, metadatas = [], []
        for page in _pages(self._chunks, ["metadatas"]):
            ids += page["ids"]
            metadatas += page["metadatas"]
        return ids, metadatas

    @_guarded
    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        out = {}
        for i in range(0, len(ids), _PAGE):
            got = self._chunks.get(ids=ids[i : i + _PAGE], include=["embeddings"])
            out.update(zip(got["ids"], _matrix(got)))
        return out

    @_guarded
    def window_vectors(self) -> tuple[list[str], np.ndarray]:
        owners, parts = [], []
        for page in _pages(self._windows, ["metadatas", "embeddings"]):
            owners += [m["chunk_id"] for m in page["metadatas"]]
            parts.append(_matrix(page))
        return owners, np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    @_guarded
    def add(self, ids: list[str], vectors: np.ndarray, documents: list[str], metadatas: list[dict]) -> None:
        _upsert(self._chunks, ids, vectors, documents, metadatas)

    @_guarded
    def add_windows(self, owner_ids: list[str], vectors: np.ndarray, documents: list[str]) -> None:
        ids, seen = [], {}
        for owner in owner_ids:
            seen[owner] = seen.get(owner, -1) + 1
            ids.append(f"{owner}:{seen[owner]}")
        _upsert(self._windows, ids, vectors, documents, [{"chunk_id": o} for o in owner_ids])

    @_guarded
    def copy_from(self, other: "ChromaVersion", skip: set[str]) -> None:
        _copy(other._chunks, self._chunks, lambda chunk_id, _: chunk_id not in skip)
        _copy(other._windows, self._windows, lambda _, metadata: metadata["chunk_id"] not in skip)


def _pages(collection: chromadb.Collection, include: list[str]) -> Iterator[dict]:
    """Every row of `collection`, `_PAGE` rows per read, so memory and each call stay bounded."""
    offset = 0
    while True:
        page = collection.get(include=include, limit=_PAGE, offset=offset)
        if not page["ids"]:
            return
        yield page
        offset += len(page["ids"])


def _matrix(got: dict) -> np.ndarray:
    return np.asarray(got["embeddings"], dtype=np.float32).reshape(len(got["ids"]), -1)


def _copy(source: chromadb.Collection, target: chromadb.Collection, keep: Callable[[str, dict], bool]) -> None:
    for got in _pages(source, ["embeddings", "documents", "metadatas"]):
        rows = [r for r, (i, m) in enumerate(zip(got["ids"], got["metadatas"])) if keep(i, m)]
        _upsert(target, [got["ids"][r] for r in rows], _matrix(got)[rows], [got["documents"][r] for r in rows],
                [got["metadatas"][r] for r in rows])


def _upsert(collection: chromadb.Collection, ids: list[str], vectors: np.ndarray, documents: list[str],
            metadatas: list[dict]) -> None:
    for i in range(0, len(ids), _ADD_BATCH):
        part = slice(i, i + _ADD_BATCH)
        collection.upsert(ids=ids[part], embeddings=vectors[part], documents=documents[part], metadatas=metadatas[part])
