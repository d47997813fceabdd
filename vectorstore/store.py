"""What the app needs from a vector store, in plain records: ids, vectors, documents and flat
metadata dicts. `rag/` converts its chunks to and from these, so adapters import nothing from it.

The store is versioned so that readers never see a half-written index: an ingest fills a
draft version, and `publish` switches every reader to it in one atomic step. A reader compares
`current_name()` with the version it loaded before each request (one small read).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class StoreError(Exception):
    """The store cannot be reached or read; the message names it and says what to do."""


class EmbedderMismatch(StoreError):
    """The index was built by another embedder; vectors from two models are not comparable."""


class Version(Protocol):
    """One version of the index: published ones are only read, a draft is written once."""

    name: str
    embedder_name: str | None

    def count(self) -> int: ...

    def records(self) -> tuple[list[str], list[dict]]:
        """Every chunk's id and metadata."""
        ...

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]: ...

    def window_vectors(self) -> tuple[list[str], np.ndarray]:
        """Every sentence window's owning chunk id and vector."""
        ...

    def add(self, ids: list[str], vectors: np.ndarray, documents: list[str], metadatas: list[dict]) -> None: ...

    def add_windows(self, owner_ids: list[str], vectors: np.ndarray, documents: list[str]) -> None:
        """Store window vectors; `owner_ids[i]` is the chunk of window i, in window order."""
        ...

    def copy_from(self, other: "Version", skip: set[str]) -> None:
        """Copy another version's chunks and their windows, except the chunk ids in `skip`."""
        ...


class VersionedStore(Protocol):
    location: str  # where the store is, for messages ("/data/index", "http://host:8000")

    def current_name(self) -> str | None: ...

    def open(self, name: str) -> Version: ...

    def draft(self, embedder_name: str) -> Version: ...

    def publish(self, draft: Version) -> None:
        """Make `draft` the current version; the one it replaces is kept for readers loading it."""
        ...

    def collect_garbage(self) -> list[str]:
        """Drop every version but the current and the previous one (drafts of killed ingests
        included); returns their names. Only an ingest holding the ingest lock may call it."""
        ...


def check_embedder(version: Version, embedder_name: str) -> None:
    built = version.embedder_name
    if built and built != embedder_name:
        raise EmbedderMismatch(
            f"The index was built with the embedder {built!r}, but the current setting is "
            f"{embedder_name!r}. Re-ingest with the current embedder (`rag ingest --rebuild`) or "
            "switch the setting back."
        )
