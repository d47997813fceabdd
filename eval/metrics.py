"""Pure metric functions: no pipeline, no I/O, so each one can be tested on hand-made cases.

Conventions
- Spans are half-open `[start, end)` character offsets into a source file. Two spans overlap
  when they share at least one character, so touching spans (`[0, 5)` and `[5, 9)`) and empty
  spans never overlap.
- Ranks are 1-based; `None` means "not found in the list".
- A per-question metric is `None` when it does not apply to that question (e.g. hit@k on an
  unanswerable question); aggregates average only the questions where it applies and report
  how many that was.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class GoldSpan:
    source: str
    start: int
    end: int


def spans_overlap(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    """True when `[a_start, a_end)` and `[b_start, b_end)` share a character."""
    if a_end <= a_start or b_end <= b_start:
        return False
    return a_start < b_end and b_start < a_end


def passage_matches(passage: Mapping, gold: Iterable[GoldSpan]) -> bool:
    """A passage (its `to_json()` form: source, char_start, char_end) overlaps a gold span."""
    return any(
        g.source == passage["source"] and spans_overlap(passage["char_start"], passage["char_end"], g.start, g.end)
        for g in gold
    )


def first_hit_rank(passages: Sequence[Mapping], gold: Sequence[GoldSpan]) -> int | None:
    """1-based position of the first passage overlapping any gold span, or None."""
    for position, passage in enumerate(passages, 1):
        if passage_matches(passage, gold):
            return position
    return None


def hit_at(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None, cutoff: int = 10) -> float:
    """MRR@cutoff contribution of one question."""
    return 1.0 / rank if rank is not None and rank <= cutoff else 0.0


def share(flags: Sequence[bool]) -> float | None:
    """Fraction of true flags; None for an empty list (nothing to measure)."""
    return sum(1 for f in flags if f) / len(flags) if flags else None


def citation_precision(correct: Sequence[bool]) -> float | None:
    """Share of cited passages that are correct (overlap gold or judged supporting)."""
    return share(correct)


def citation_recall(gold_cited: bool) -> float:
    """Per answerable question: 1 when at least one cited passage overlaps a gold span."""
    return 1.0 if gold_cited else 0.0


def key_fact_coverage(covered: Sequence[bool]) -> float | None:
    return share(covered)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method), q in [0, 100]."""
    data = sorted(v for v in values if v is not None)
    if not data:
        return None
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


@dataclass(frozen=True)
class Aggregate:
    value: float | None
    n: int

    def to_json(self) -> dict:
        return {"value": None if self.value is None else round(self.value, 4), "n": self.n}


def aggregate(rows: Sequence[Mapping[str, float | None]], names: Sequence[str]) -> dict[str, Aggregate]:
    """Mean of each metric over the rows where it applies (is not None)."""
    out = {}
    for name in names:
        present = [r[name] for r in rows if r.get(name) is not None]
        out[name] = Aggregate(mean(present), len(present))
    return out


def latency_summary(values: Sequence[float | None]) -> dict[str, float | None]:
    present = [v for v in values if v is not None]
    return {"p50": percentile(present, 50), "p95": percentile(present, 95), "n": len(present)}
