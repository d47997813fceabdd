"""An answer's text → the claims it makes and the citations each claim carries.

Rules (they fit the extractive answerer's `- Who: “quote” [n]` lines and LLM prose alike):
- Lines that are the answerer's fixed phrasing (intro, translated note, abstention), lines that
  end with a colon, and lines in parentheses are framing, not claims.
- A line (or bullet item; a quotation may run over several lines) that quotes (“…”, 「…」,
  "…") is one claim: the words from the first opening mark to the last closing one, checked
  against the passages its `[n]` markers cite. The attribution in front is not checked here.
- Any other line is split into sentences; a sentence without a marker takes the markers of the
  next sentence on its line that has some (citing at the end of a run), else of the previous.
- A claim without any marker cites nothing, so it can never be supported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_MARKER = re.compile(r"\[(\d+)\]")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_SPLIT = re.compile(r"(?<=[。！？!?])|(?<=\.)\s+")
_QUOTE_PAIRS = (("“", "”"), ("「", "」"), ("\"", "\""))


@dataclass
class Claim:
    text: str
    cited: list[int]


@lru_cache(maxsize=1)
def framing_phrases() -> frozenset[str]:
    try:
        from rag.answering import load_phrases
    except ImportError:  # pragma: no cover
        return frozenset()
    phrases = load_phrases()
    return frozenset(
        v.strip() for lang in phrases.values() if isinstance(lang, dict)
        for key, v in lang.items() if key in ("intro", "translated_note", "abstain") and isinstance(v, str) and v.strip()
    )


def _is_framing(line: str) -> bool:
    bare = line.strip()
    return (bare in framing_phrases() or bare.endswith((":", "：")) or (bare.startswith(("(", "（")) and bare.endswith((")", "）"))))


def _clean(text: str) -> str:
    return _MARKER.sub("", text).strip().rstrip("…").strip()


def _unclosed(text: str) -> bool:
    return text.count("“") > text.count("”") or text.count("「") > text.count("」")


def _items(answer: str) -> list[str]:
    """Lines, with a quotation that runs over several lines (blank or bulleted ones included)
    kept in one item; a quotation never closed falls back to one item per line."""
    items: list[str] = []
    for line in answer.splitlines():
        if items and _unclosed(items[-1]):
            items[-1] += "\n" + line
        elif line.strip():
            items.append(line)
    if items and _unclosed(items[-1]) and "\n" in items[-1]:
        items[-1:] = [line for line in items[-1].split("\n") if line.strip()]
    return items


def _quoted(item: str) -> str | None:
    """The quoted words of an item: from the first opening mark to the last closing one, so
    quotation marks inside the quote stay part of it."""
    for opening, closing in _QUOTE_PAIRS:
        a = item.find(opening)
        b = item.rfind(closing)
        if a >= 0 and b > a:
            return item[a + 1 : b]
    return None


def split_claims(answer: str) -> list[Claim]:
    claims: list[Claim] = []
    for item in _items(answer):
        if _is_framing(item):
            continue
        markers = [int(n) for n in _MARKER.findall(item)]
        quote = _quoted(item)
        if quote is not None:
            text = _clean(quote)
            if text:
                claims.append(Claim(text, markers))
            continue
        body = _BULLET.sub("", item.strip(), count=1)
        sentences = [s for s in _SPLIT.split(body) if _clean(s)]
        cites = [[int(n) for n in _MARKER.findall(s)] for s in sentences]
        for i, sentence in enumerate(sentences):
            own = cites[i]
            if not own:
                later = next((c for c in cites[i + 1 :] if c), None)
                earlier = next((c for c in reversed(cites[:i]) if c), None)
                own = later or earlier or []
            claims.append(Claim(_clean(sentence), own))
    return claims


def answer_body(answer: str) -> str:
    """The answer without framing lines and markers: what key facts are looked for in."""
    items = [_clean(_BULLET.sub("", item, count=1)) for item in _items(answer) if not _is_framing(item)]
    return "\n".join(item for item in items if item)
