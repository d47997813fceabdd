"""Multilingual query expansion through the configured LLM (the approach of Onyx and other
multilingual assistants): an English question is also searched in Chinese, a Chinese one in
English (for the bilingual file), and the results are fused with the original's.

One extra LLM call per question, cached by question, bounded by a short timeout; when it fails
or is slow, retrieval goes on with the offline glossary/CC-CEDICT bridge alone.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from threading import Lock

from rag.llm.backends import ChatBackend, within
from rag.prompts import LANGUAGE_NAMES, load_prompt
from rag.text import detect_language

log = logging.getLogger(__name__)

_CACHE_SIZE = 512
_MAX_CHARS = 400
_MAX_TOKENS = 120  # a question's translation is short; a model that rambles is cut off early


class QueryTranslator:
    def __init__(self, backend: ChatBackend, timeout: float):
        self.backend = backend
        self.timeout = timeout
        self._cache: OrderedDict[str, str | None] = OrderedDict()
        self._lock = Lock()

    def translations(self, question: str) -> list[str]:
        """The question in the corpus's other language, or [] when the model fails or is slow."""
        with self._lock:
            if question in self._cache:
                self._cache.move_to_end(question)
                cached = self._cache[question]
                return [cached] if cached else []
        try:
            translated = within(self.timeout, lambda: self._translate(question))
        except TimeoutError:
            log.warning("query translation took over %.1f s; searching without it", self.timeout)
            return []  # not cached: the next ask may be luckier
        except Exception as exc:  # the offline bridge still works
            log.warning("query translation failed (%s); searching without it", type(exc).__name__)
            translated = None
        with self._lock:
            self._cache[question] = translated
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return [translated] if translated else []

    def _translate(self, question: str) -> str | None:
        target = "en" if detect_language(question) == "zh" else "zh"
        messages = load_prompt("translate").messages(question=question, target_language=LANGUAGE_NAMES[target])
        reply = "".join(self.backend.stream(messages, max_tokens=_MAX_TOKENS))
        line = next((ln.strip() for ln in reply.splitlines() if ln.strip()), "")
        if not line or len(line) > _MAX_CHARS or detect_language(line) != target or line == question:
            return None  # not a translation into the other language: don't search with it
        return line
