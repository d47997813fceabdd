"""The typed events `Pipeline.ask_stream` yields, in this order:

1. `Retrieved` once: the passages and the question as searched (a follow-up rewritten, the
   detected speaker or venue, the expansion terms), so an interface can show sources before the
   model has written a word;
2. `TextDelta` any number of times: the draft answer as it is written (markers complete and
   already numbered as the user will see them);
3. `Completed` once: the verified `Answer`, which replaces the draft.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.models import Answer, QueryPlan, SearchResult


@dataclass
class Retrieved:
    question: str  # as the user asked it
    result: SearchResult
    timings_ms: dict[str, float]

    @property
    def query(self) -> QueryPlan:
        return self.result.plan

    def to_json(self) -> dict:
        return {"type": "retrieved", "question": self.question, "query": self.query.to_json(),
                "confidence": self.result.confidence, "passages": [p.to_json() for p in self.result.passages],
                "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()}}


@dataclass
class TextDelta:
    text: str
    replace: bool = False  # the draft so far is discarded (an LLM failed; the fallback starts)

    def to_json(self) -> dict:
        return {"type": "delta", "text": self.text, "replace": self.replace}


@dataclass
class Completed:
    answer: Answer

    def to_json(self) -> dict:
        return {"type": "answer", **self.answer.to_json()}


Event = Retrieved | TextDelta | Completed
