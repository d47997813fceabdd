"""Regression cases from users' thumbs up/down (`rag eval feedback`).

A vote pins what the answer was: which passages it cited, or that it abstained. A thumbs-up case
passes while the pipeline still gives that answer's sources (a change that loses them is a
regression); a thumbs-down case passes once the answer differs from the rejected one (until then
it is a known bad answer, with the user's comment saying what was wrong). The latest vote on the
same question in the same conversation wins.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass
class FeedbackCase:
    id: str
    question: str
    history: list[dict]
    vote: str  # "up": keep this answer's sources; "down": must change
    comment: str
    abstained: bool
    cited: list[dict] = field(default_factory=list)  # {source, char_start, char_end, speaker}
    time: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def _spans(citations: list[dict]) -> list[dict]:
    return [{k: c.get(k) for k in ("source", "char_start", "char_end", "speaker")} for c in citations]


def cases_from_feedback(entries: list[dict]) -> list[FeedbackCase]:
    """One case per (conversation, question), from its latest vote."""
    latest: dict[str, dict] = {}
    for entry in entries:
        if not entry.get("question"):
            continue
        key = json.dumps([entry.get("history") or [], entry["question"]], ensure_ascii=False, sort_keys=True)
        latest[key] = entry
    return [FeedbackCase(id="fb-" + hashlib.sha256(key.encode()).hexdigest()[:10], question=e["question"],
                         history=e.get("history") or [], vote=e["vote"], comment=e.get("comment") or "",
                         abstained=bool(e.get("abstained")), cited=_spans(e.get("citations") or []),
                         time=e.get("time") or "")
            for key, e in latest.items()]


def _span_keys(spans: list[dict]) -> list[tuple]:
    return sorted((s["source"], s["char_start"], s["char_end"]) for s in spans)


def same_answer(case: FeedbackCase, answer: dict) -> bool:
    """Whether an answer matches the voted one: both abstain, or they cite the same passages."""
    if case.abstained or answer["abstained"]:
        return case.abstained == answer["abstained"]
    return _span_keys(case.cited) == _span_keys(_spans(answer["citations"]))


def replay(pipeline, cases: list[FeedbackCase]) -> list[dict]:
    """Ask every case again; `passed` per the rule in the module docstring."""
    results = []
    for case in cases:
        answer = pipeline.ask(case.question, case.history, interface="eval").to_json()
        same = same_answer(case, answer)
        results.append({"id": case.id, "vote": case.vote, "question": case.question, "comment": case.comment,
                        "passed": same if case.vote == "up" else not same, "answer": answer["answer"]})
    return results
