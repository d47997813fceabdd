"""LLM backends: LangChain chat models behind one small `ChatBackend` protocol.

- `openai`: any OpenAI-compatible server through `langchain-openai` (vLLM, Ollama, LM Studio,
  llama.cpp's server, OpenAI). With a base URL and no model set, the server's own model is used
  (these servers usually serve one).
- `anthropic`: the Messages API through `langchain-anthropic`.
- `llamacpp`: a GGUF file in this process through `llama-cpp-python` (`pip install .[local]`),
  with the chat template stored in the GGUF.

Configuration mistakes (no key, no model, no file) are `ConfigError`s raised when the backend
is built, naming the setting to fix. Failures while answering (server down, timeout, unknown
model) raise from `stream()`; the pipeline turns them into the extractive answer plus a reason,
which `describe_failure` words without ever including the API key.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from rag.errors import ConfigError
from rag.settings import Settings

log = logging.getLogger(__name__)

Messages = list[tuple[str, str]]  # (role, text), role in "system" / "user" / "assistant"
T = TypeVar("T")

_SIDE_CALLS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llm-side-call")


def within(timeout: float, call: Callable[[], T]) -> T:
    """`call()` for an LLM side call (query translation, the answerability check), which must not
    hold up an answer: raises TimeoutError after `timeout` s (the call ends unused in the background)."""
    return _SIDE_CALLS.submit(call).result(timeout=timeout)


class ChatBackend(Protocol):
    name: str

    @property
    def model(self) -> str: ...

    def stream(self, messages: Messages, max_tokens: int | None = None) -> Iterator[str]:
        """Text deltas of the reply (at most `max_tokens`, default the setting); raises on any failure."""
        ...


class LangChainBackend:
    """A LangChain chat model, built on first use (so the model name can come from the server)."""

    def __init__(self, name: str, build: Callable[[], Any], model: str | None, secret: str | None = None,
                 discover_model: Callable[[], str] | None = None):
        self.name = name
        self._build = build
        self._model = model
        self._discover_model = discover_model
        self._chat = None
        self.secret = secret

    @property
    def model(self) -> str:
        if self._model is None and self._discover_model is not None:
            self._model = self._discover_model()
        return self._model or "default"

    def stream(self, messages: Messages, max_tokens: int | None = None) -> Iterator[str]:
        if self._chat is None:
            self.model  # noqa: B018 - resolve the model name before building the client
            self._chat = self._build()
        for chunk in self._chat.stream(messages, **({"max_tokens": max_tokens} if max_tokens else {})):
            if isinstance(chunk.content, str):
                text = chunk.content
            else:  # content blocks (Anthropic): keep the text ones
                text = "".join(b.get("text", "") for b in chunk.content if isinstance(b, dict))
            if text:
                yield text


def _secret(settings: Settings, env: str) -> str | None:
    if settings.llm_api_key is not None:
        return settings.llm_api_key.get_secret_value()
    return os.environ.get(env)


def _timeout(settings: Settings):
    import httpx

    return httpx.Timeout(settings.llm_timeout, connect=settings.llm_connect_timeout)


def _server_model(base_url: str, api_key: str | None, settings: Settings) -> Callable[[], str]:
    def discover() -> str:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        reply = httpx.get(base_url.rstrip("/") + "/models", headers=headers, timeout=_timeout(settings))
        reply.raise_for_status()
        models = [m["id"] for m in reply.json().get("data", [])]
        if not models:
            raise ConfigError(f"The server at {base_url} lists no model; set RAG_LLM_MODEL.")
        return models[0]

    return discover


def _openai(settings: Settings) -> ChatBackend:
    base_url = settings.llm_base_url
    key = _secret(settings, "OPENAI_API_KEY")
    if not base_url and not key:
        raise ConfigError("RAG_LLM=openai needs RAG_LLM_BASE_URL (a local server, e.g. "
                          "http://127.0.0.1:11434/v1 for Ollama) or an API key in RAG_LLM_API_KEY.")
    if not base_url and not settings.llm_model:
        raise ConfigError("RAG_LLM=openai without RAG_LLM_BASE_URL needs RAG_LLM_MODEL (e.g. gpt-4o-mini).")
    backend: LangChainBackend

    def build():
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(model=backend.model, base_url=base_url, api_key=key or "not-needed",
                          timeout=_timeout(settings), max_retries=settings.llm_max_retries,
                          max_tokens=settings.llm_max_tokens, temperature=settings.llm_temperature,
                          streaming=True)

    discover = _server_model(base_url, key, settings) if base_url and not settings.llm_model else None
    backend = LangChainBackend("openai", build, settings.llm_model, key, discover)
    return backend


def _anthropic(settings: Settings) -> ChatBackend:
    key = _secret(settings, "ANTHROPIC_API_KEY")
    if not key:
        raise ConfigError("RAG_LLM=anthropic needs an API key: set ANTHROPIC_API_KEY or RAG_LLM_API_KEY.")
    if not settings.llm_model:
        raise ConfigError("RAG_LLM=anthropic needs RAG_LLM_MODEL (e.g. claude-sonnet-4-5).")

    def build():
        from langchain_anthropic import ChatAnthropic

        extra = {"base_url": settings.llm_base_url} if settings.llm_base_url else {}
        return ChatAnthropic(model=settings.llm_model, api_key=key, timeout=settings.llm_timeout,
                             max_retries=settings.llm_max_retries, max_tokens=settings.llm_max_tokens,
                             temperature=settings.llm_temperature, streaming=True, **extra)

    return LangChainBackend("anthropic", build, settings.llm_model, key)


def _llamacpp(settings: Settings) -> ChatBackend:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise ConfigError("RAG_LLM=llamacpp needs llama-cpp-python: pip install '.[local]'.") from None
    path = Path(settings.llm_model or "")
    if not settings.llm_model or not path.is_file():
        raise ConfigError(f"RAG_LLM=llamacpp needs RAG_LLM_MODEL set to a GGUF file; {str(path)!r} is not one.")

    def build():
        from rag.llm.llamacpp_chat import LlamaCppChat

        return LlamaCppChat(model_path=str(path), n_ctx=settings.llm_context_window, n_threads=settings.llm_threads,
                            max_tokens=settings.llm_max_tokens, temperature=settings.llm_temperature)

    return LangChainBackend("llamacpp", build, path.name)


_BACKENDS: dict[str, Callable[[Settings], ChatBackend]] = {
    "openai": _openai, "anthropic": _anthropic, "llamacpp": _llamacpp}


def build_backend(settings: Settings) -> ChatBackend | None:
    """The configured LLM backend, or None for the extractive answerer."""
    if settings.llm == "extractive":
        return None
    return _BACKENDS[settings.llm](settings)


def describe_failure(exc: BaseException, backend: ChatBackend, settings: Settings) -> str:
    """A one-line reason a user can act on, naming the setting; never the key."""
    kind = type(exc).__name__
    text = str(exc)
    where = settings.llm_base_url or backend.name
    if "Timeout" in kind or "timed out" in text.lower():
        reason = f"{backend.name} did not answer within {settings.llm_timeout:g} s (RAG_LLM_TIMEOUT)"
    elif "Connect" in kind or "connection" in text.lower():
        reason = f"could not reach the {backend.name} server at {where} (RAG_LLM_BASE_URL)"
    elif "NotFound" in kind or getattr(exc, "status_code", None) == 404:
        reason = f"{where} does not know the model {settings.llm_model or backend.name!r} (RAG_LLM_MODEL)"
    elif "Authentication" in kind or getattr(exc, "status_code", None) in (401, 403):
        reason = f"{where} rejected the API key (RAG_LLM_API_KEY)"
    else:
        reason = f"{backend.name} failed: {kind}: {text[:200]}"
    secret = getattr(backend, "secret", None)
    return reason.replace(secret, "***") if secret else reason
