"""A draft answer → the answer users see, every citation checked.

Markers are normalised and renumbered (`rag.answer.citations`), numbers that name no passage are
removed and reported, and each claim (sentence, or quoted line) is checked against the
passages it cites with the support check (`rag.answer.support`), across languages. A claim is
supported when one of its cited passages supports it; a citation is supported when it
supports at least one claim that cites it. Each citation also names the sentence of its
passage those claims rest on, so every interface quotes the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rag.answer.citations import Renumbering, cited_sentence, render, split_claims
from rag.answer.support import Verdict
from rag.models import Citation, Claim, Passage
from rag.prompts import framing_phrases


class SupportCheck(Protocol):
    def supports(self, claim: str, evidence: str) -> Verdict: ...


@dataclass
class Verified:
    text: str
    citations: list[Citation]
    claims: list[Claim]
    invalid: list[str]


def evidence(passage: Passage) -> str:
    """What a claim may be checked against: the passage in both languages where it has both."""
    chunk = passage.chunk
    return chunk.text + ("\n" + chunk.parallel_text if chunk.parallel_text else "")


def quote(passage: Passage, claims: list[str]) -> str | None:
    """The sentence of the passage as shown that its citing claims rest on (what a source list quotes)."""
    return cited_sentence(passage.shown_text or passage.chunk.text, claims) if claims else None


def verify(draft: str, sources: list[Passage], checker: SupportCheck) -> Verified:
    numbering = Renumbering(len(sources))
    text = render(draft.strip(), numbering)
    by_shown = {shown: sources[given - 1] for given, shown in numbering.order.items()}
    claims = split_claims(text, framing_phrases())
    backing: dict[int, bool] = {n: False for n in by_shown}
    for claim in claims:
        cited = [n for n in claim.cited if n in by_shown]
        verdicts = {n: checker.supports(claim.text, evidence(by_shown[n])).supported for n in cited}
        claim.supported = any(verdicts.values())
        for n, ok in verdicts.items():
            backing[n] = backing[n] or ok
    citations = [Citation(n, by_shown[n], backing[n], quote(by_shown[n], [c.text for c in claims if n in c.cited]))
                 for n in sorted(by_shown)]
    return Verified(text, citations, claims, list(dict.fromkeys(numbering.invalid)))
