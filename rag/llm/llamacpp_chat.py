"""A LangChain chat model over `llama_cpp.Llama`: a GGUF file answered in this process.

`create_chat_completion` applies the chat template stored in the GGUF, so any instruct model
that ships its template works without per-model prompt formatting. Imported only when
`RAG_LLM=llamacpp` (llama-cpp-python is the optional `local` extra).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class LlamaCppChat(BaseChatModel):
    model_path: str
    n_ctx: int = 4096
    n_threads: int | None = None
    max_tokens: int = 400
    temperature: float = 0.1
    _llama: Any = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-in-process"

    def _model(self):
        if self._llama is None:
            from llama_cpp import Llama

            self._llama = Llama(model_path=self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False)
        return self._llama

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, max_tokens: int | None = None) -> dict:
        return {"messages": [{"role": _ROLES.get(m.type, "user"), "content": m.text} for m in messages],
                "max_tokens": max_tokens or self.max_tokens, "temperature": self.temperature, "stop": stop or []}

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager=None,
                  **kwargs: Any) -> ChatResult:
        reply = self._model().create_chat_completion(**self._request(messages, stop, kwargs.get("max_tokens")))
        text = reply["choices"][0]["message"]["content"] or ""
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager=None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for part in self._model().create_chat_completion(stream=True, **self._request(messages, stop, kwargs.get("max_tokens"))):
            text = part["choices"][0]["delta"].get("content")
            if text:
                if run_manager:
                    run_manager.on_llm_new_token(text)
                yield ChatGenerationChunk(message=AIMessageChunk(content=text))
