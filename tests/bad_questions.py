"""The bad-question catalogue (issue 12), one table for every interface that takes a question.

Each case: what the user sends, and either the message they must get (refused: nothing is
searched) or None (the text is cleaned and answered like the plain question).
"""

from __future__ import annotations

from dataclasses import dataclass, field

PLAIN = "What did Askell say about sycophancy?"


@dataclass(frozen=True)
class BadQuestion:
    name: str
    question: str
    refusal: str | None  # the message's telling part; None: answered as PLAIN would be
    options: dict = field(default_factory=dict)  # k, speaker (the Python API and the web API take them)


QUESTION_CASES = [
    BadQuestion("empty", "", "The question is empty."),
    BadQuestion("whitespace", " \n\t\u3000 ", "The question is empty."),
    BadQuestion("100 KB", "why " * 25_000, "please keep it under 2,000"),
    BadQuestion("control characters", "What did Askell\x00 say\x1b[31m about\x07 sycophancy?\x7f", None),
    BadQuestion("lone surrogates", "What did Askell say \ud800about sycophancy?\udfff", None),
]
OPTION_CASES = [
    BadQuestion("k = 0", PLAIN, "must be between 1 and 50", {"k": 0}),
    BadQuestion("k < 0", PLAIN, "must be between 1 and 50", {"k": -3}),
    BadQuestion("k huge", PLAIN, "must be between 1 and 50", {"k": 10**9}),
    BadQuestion("unknown speaker", PLAIN, "Unknown speaker", {"speaker": "Nobody Atall"}),
]
ALL_CASES = QUESTION_CASES + OPTION_CASES


def ids(cases: list[BadQuestion]) -> list[str]:
    return [case.name for case in cases]
