"""`rag doctor`: checks the install and says what to fix, one line per check.

Each check is a small function of the `Install` under examination, returning a `Finding` (or
None when it does not apply, e.g. the embedder check when the store is unreadable). Add a check
by writing one and listing it in `CHECKS`; a check may simply raise `UserError` with its message.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import httpx

from rag.errors import UserError
from rag.factory import build_embedder, build_index, build_reranker
from rag.index.corpus import CorpusIndex
from rag.index.embeddings import Embedder
from rag.llm.backends import build_backend, describe_failure
from rag.settings import Settings
from vectorstore.store import StoreError, Version, check_embedder


@dataclass(frozen=True)
class Finding:
    ok: bool
    message: str  # one line: what was found and, when not ok, what to do


class Install:
    """The components under examination, built once and shared by the checks."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def embedder(self) -> Embedder:
        with _offline():
            return build_embedder(self.settings)

    @cached_property
    def index(self) -> CorpusIndex:
        return build_index(self.settings)

    @property
    def version(self) -> Version | None:
        return self.index.version


@contextmanager
def _offline() -> Iterator[None]:
    """Hugging Face libraries may not download while in here: the app must work offline."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({k: "1" for k in saved})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def embedder_loads_offline(install: Install) -> Finding:
    vector = install.embedder.encode_query("doctor")
    return Finding(len(vector) == install.embedder.dim, f"embedder {install.embedder.name} loads offline")


def reranker_loads_offline(install: Install) -> Finding | None:
    if not install.settings.reranker_model:
        return None
    with _offline():
        build_reranker(install.settings)
    return Finding(True, f"reranker {install.settings.reranker_model} loads offline")


def store_is_readable(install: Install) -> Finding:
    where = install.index.store.location
    if install.version is None:
        return Finding(False, f"the index at {where} is empty: run `rag ingest`")
    return Finding(True, f"index at {where}: version {install.version.name}, {install.version.count()} chunks")


def store_matches_embedder(install: Install) -> Finding | None:
    if install.version is None or install.embedder is None:
        return None
    check_embedder(install.version, install.embedder.name)
    return Finding(True, f"the index was built by the configured embedder ({install.version.embedder_name})")


def no_legacy_store(install: Install) -> Finding | None:
    legacy = install.settings.legacy_chroma_path
    if not (legacy / "chroma.sqlite3").exists():
        return None
    return Finding(False, f"an index from before versioned ingest is at {legacy}: it is no longer read; "
                          "re-ingest the folders you had added (`rag ingest PATH`), then delete it")


def llm_backend_is_usable(install: Install) -> Finding | None:
    """The configured LLM: its settings complete, and an OpenAI-compatible server answering /models
    (the Anthropic API is not called: that would cost money; its key is only checked to be set)."""
    settings = install.settings
    backend = build_backend(settings)  # a ConfigError names the setting
    if backend is None:
        return None
    if settings.llm == "openai" and settings.llm_base_url:
        try:
            model = backend.model  # asks the server when RAG_LLM_MODEL is unset
            if settings.llm_model:
                httpx.get(settings.llm_base_url.rstrip("/") + "/models",
                          timeout=settings.llm_connect_timeout).raise_for_status()
        except Exception as exc:
            return Finding(False, describe_failure(exc, backend, settings))
        return Finding(True, f"LLM server {settings.llm_base_url} answers; model {model}")
    return Finding(True, f"LLM backend {backend.name} configured; model {backend.model}")


CHECKS: list[Callable[[Install], Finding | None]] = [
    embedder_loads_offline,
    reranker_loads_offline,
    store_is_readable,
    store_matches_embedder,
    no_legacy_store,
    llm_backend_is_usable,
]


def run_checks(settings: Settings) -> list[tuple[str, Finding]]:
    """Every applicable check's name and finding; a check that raises is a failed finding, reported
    once when a later check meets the same failure (e.g. an unreadable store)."""
    install = Install(settings)
    results: list[tuple[str, Finding]] = []
    for check in CHECKS:
        name = check.__name__.replace("_", " ")
        try:
            finding = check(install)
        except (UserError, StoreError) as exc:
            finding = Finding(False, " ".join(str(exc).split()))
        except Exception as exc:  # the doctor reports what is broken, it does not crash on it
            finding = Finding(False, f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        if finding is not None and finding not in (f for _, f in results):
            results.append((name, finding))
    return results
