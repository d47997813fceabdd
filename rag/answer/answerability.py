"""With an LLM configured: do the best passages state what the question asks? The offline signals
(`rag.retrieve.coverage`) decide first; this check reads what an answer would quote."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from rag.llm.backends import ChatBackend, within
from rag.models import SearchResult
from rag.prompts import load_prompt
from rag.retrieve.coverage import quoted_evidence

log = logging.getLogger(__name__)


@dataclass
class CheckResult:
    """The LLM's verdict on the best passages: `states_answer` None when it gave none in time."""

    states_answer: bool | None
    ms: float
    fallback: str | None = None  # why the offline decision stands (timeout, failure, empty reply)

    def to_json(self) -> dict:
        return {"states_answer": self.states_answer, "ms": round(self.ms, 1), "fallback": self.fallback}


class AnswerabilityCheck:
    """With an LLM: do the best passages state what the question asks? A near miss ("what did
    Amanda name her stolen bike?") retrieves passages naming all the right things, so only
    reading tells. One short call on what an answer would quote from the top passages (a small
    local model reads slowly; whole passages cost it minutes on a CPU): the model copies the
    words that answer or says NONE, and only its first words are read. On a timeout, a failure
    or an empty reply the offline decision stands."""

    PASSAGES = 3
    MAX_TOKENS = 4  # NONE, or the start of a quote

    def __init__(self, backend: ChatBackend, timeout: float):
        self.backend = backend
        self.timeout = timeout

    def check(self, result: SearchResult) -> CheckResult:
        started = time.perf_counter()
        try:
            states = within(self.timeout, lambda: self._ask(result))
            fallback = None if states is not None else "empty reply"
        except TimeoutError:
            states, fallback = None, f"no verdict within {self.timeout:g} s (RAG_LLM_CHECK_TIMEOUT)"
        except Exception as exc:  # the offline decision still stands
            states, fallback = None, f"check failed: {type(exc).__name__}"
        if fallback:
            log.warning("answerability check: %s; answering on retrieval alone", fallback)
        return CheckResult(states, (time.perf_counter() - started) * 1000, fallback)

    def _ask(self, result: SearchResult) -> bool | None:
        quotes = quoted_evidence(result.passages, result.plan.terms, self.PASSAGES)
        blocks = "\n\n".join(f"[{n}] {quote}" for n, quote in enumerate(quotes, 1))
        messages = load_prompt("answerable").messages(question=result.plan.question, passages=blocks)
        reply = "".join(self.backend.stream(messages, max_tokens=self.MAX_TOKENS)).strip(" \n\"'*.:")
        if not reply:
            return None
        return reply.split()[0].lower().strip(".,") not in ("none", "no")
