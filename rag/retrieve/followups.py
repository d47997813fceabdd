"""Follow-up questions → questions that stand alone, before retrieval.

"and what did Askell say about it?" after "What did Dario Amodei say about RLHF?" must search
for Askell on RLHF. A question is treated as a follow-up only when it leans on the conversation:
it refers to a person it doesn't name ("does he think…", "她怎么看"), or it has (almost) no
topic words of its own and refers back ("it", "and …?", "呢"), or has none at all ("why?"). A question that stands alone is searched as written.

With an LLM configured, the condense prompt (`prompts/condense.toml`) rewrites it; without one,
or when the model fails, a rule does: the previous question (itself made standalone) with the
newly named person in place of the old one, or the previous question followed by this one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

from rag.lexicon import tokenize
from rag.llm.backends import ChatBackend
from rag.models import MARKER
from rag.prompts import load_prompt
from rag.speakers import SpeakerTable
from rag.text import without_spans

log = logging.getLogger(__name__)

ChatMessage = Mapping[str, str]  # {"role": "user" | "assistant", "content": str}

_REFERS_BACK_EN = re.compile(
    r"^\s*(?:and|but|so|also|what about|how about)\b"
    r"|\b(?:it|its|it's|they|them|their|he|him|his|she|her|hers|that|this|those|these|there)\b", re.I)
_REFERS_BACK_ZH = re.compile(r"[他她它]|这个|那个|这些|那些|这样|那样|呢\s*[？?]?\s*$|^\s*(?:那|还有|那么)")
# a person referred to but not named: who it is can only come from the conversation
_UNNAMED_PERSON = re.compile(r"\b(?:he|him|his|she|her|hers|they|them|their)\b|[他她]", re.I)
_MAX_OWN_TOPIC_WORDS = 2
_HISTORY_MESSAGES = 6
_HISTORY_CHARS = 400
_MAX_TOKENS = 120  # one rewritten question


def user_questions(history: Sequence[ChatMessage]) -> list[str]:
    return [m["content"].strip() for m in history if m.get("role") == "user" and m.get("content", "").strip()]


class Condenser:
    def __init__(self, speakers: SpeakerTable, backend: ChatBackend | None = None):
        self.speakers = speakers
        self.backend = backend

    def leans_on_context(self, question: str) -> bool:
        own = self._topic_words(question)
        if _UNNAMED_PERSON.search(question) and not self.speakers.mentions(question):
            return True
        refers_back = bool(_REFERS_BACK_EN.search(question) or _REFERS_BACK_ZH.search(question))
        return not own or (refers_back and len(own) <= _MAX_OWN_TOPIC_WORDS)

    def condense(self, question: str, history: Sequence[ChatMessage]) -> tuple[str, str | None]:
        """(the question to search, "llm" / "rule" / None for how it was rewritten)."""
        earlier = user_questions(history)
        if not earlier or not self.leans_on_context(question):
            return question, None
        if self.backend is not None:
            rewritten = self._by_llm(question, history)
            if rewritten:
                return rewritten, "llm"
        return self.by_rule(question, earlier), "rule"

    def by_rule(self, question: str, earlier: list[str]) -> str:
        previous = earlier[0]
        for later in earlier[1:]:  # each earlier question made standalone in turn
            previous = self._merge(later, previous) if self.leans_on_context(later) else later
        return self._merge(question, previous)

    def _merge(self, question: str, previous: str) -> str:
        named_now = self.speakers.mentions(question)
        named_before = self.speakers.mentions(previous)
        if named_now and named_before:  # the same question, about the newly named person
            name = named_now[0][0]
            for _, start, end in sorted(named_before, key=lambda m: m[1], reverse=True):
                previous = previous[:start] + name + previous[end:]
            return previous
        return f"{previous} {question}"

    def _topic_words(self, question: str) -> list[str]:
        return tokenize(without_spans(question, [(a, b) for _, a, b in self.speakers.mentions(question)]))

    def _by_llm(self, question: str, history: Sequence[ChatMessage]) -> str | None:
        lines = []
        for message in list(history)[-_HISTORY_MESSAGES:]:
            text = " ".join(MARKER.sub("", message.get("content", "")).split())[:_HISTORY_CHARS]
            lines.append(f"{'User' if message.get('role') == 'user' else 'Assistant'}: {text}")
        messages = load_prompt("condense").messages(history="\n".join(lines), question=question)
        try:
            reply = "".join(self.backend.stream(messages, max_tokens=_MAX_TOKENS))
        except Exception as exc:  # the rule still works; the answer step reports a dead backend
            log.warning("condensing the follow-up with %s failed: %s", self.backend.name, type(exc).__name__)
            return None
        line = next((ln for ln in reply.splitlines() if ln.strip()), "").strip().strip("\"'“”「」")
        line = re.sub(r"^(?:standalone question|question)\s*[:：]\s*", "", line, flags=re.I)
        return line if 2 <= len(line) <= 400 else None
