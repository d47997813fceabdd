"""Citation markers in an answer: parsing, renumbering, streaming without half-written markers,
and splitting the answer into the claims each marker backs.

Markers are understood as models write them: `[3]`, `[1,2]`, `[1, 2]`, `[1][2]`, `[1-3]`,
`【1】`, `【1，2】`. What is *not* a citation: anything inside a code span or code block, and the
target of a Markdown link (`[1](https://…)` keeps `[1]` and loses the URL, so a link can't pose
as a source). A number that names no passage (`[0]`, `[99]`) is removed and reported.

Passages are numbered in the order the answerer was given them; users see them renumbered
`[1]`, `[2]`, … in order of first citation, so the sources list reads top to bottom.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from rag.models import MARKER, MARKER_NUMBERS, Claim
from rag.text import sentences

_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.DOTALL)
# what may still grow into a marker (or a marker's link target) at the end of a streamed draft
_PARTIAL_TAIL = re.compile(rf"(?:[\[【][\d\s,，、;；\-–]{{0,16}}|[\[【]\s*{MARKER_NUMBERS}\s*[\]】](?:\([^)\s]*)?)$")
_OPEN_FENCE = re.compile(r"`+$")
_SPACE_TAIL = re.compile(r"\s+$")  # held: a marker that turns out invalid takes the gap before it


def _numbers(spec: str) -> list[int]:
    """"1, 3-5" → [1, 3, 4, 5]; a range wider than ten is read as its two ends."""
    out: list[int] = []
    for part in re.split(r"[,，、;；]", spec):
        bounds = [int(x) for x in re.split(r"[-–]", part)]
        first, last = bounds[0], bounds[-1]
        out.extend(range(first, last + 1) if 0 <= last - first <= 10 else bounds)
    return out


def _code_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _CODE.finditer(text)]


@dataclass
class Renumbering:
    """Passage numbers as the answerer saw them → numbers as the user sees them."""

    valid: int  # passages 1..valid exist
    order: dict[int, int] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)

    def shown(self, given: int) -> int | None:
        if not 1 <= given <= self.valid:
            return None
        return self.order.setdefault(given, len(self.order) + 1)


def render(text: str, numbering: Renumbering) -> str:
    """`text` with every marker normalised to `[n][m]`, renumbered, invalid ones removed."""
    code = _code_spans(text)
    out: list[str] = []
    last = 0
    for m in MARKER.finditer(text):
        if any(a <= m.start() < b for a, b in code):
            continue
        before = text[last : m.start()]
        shown = []
        for n in _numbers(m.group("numbers")):
            s = numbering.shown(n)
            if s is None:
                numbering.invalid.append(f"[{n}]")
            elif s not in shown:
                shown.append(s)
        out.append(before if shown else before.rstrip(" \t"))  # no gap where a bad marker was
        out.append("".join(f"[{s}]" for s in shown))
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def cited_numbers(text: str) -> list[int]:
    """The numbers of the markers in already-rendered text, in order, once each."""
    found: list[int] = []
    code = _code_spans(text)
    for m in MARKER.finditer(text):
        if not any(a <= m.start() < b for a, b in code):
            found.extend(n for n in _numbers(m.group("numbers")) if n not in found)
    return found


class StreamGuard:
    """Turns raw model deltas into deltas safe to show: markers only once complete, already
    renumbered, invalid ones dropped; the opening held back while it may be `hold_prefix`
    (the answer prompt's "not covered" reply, which the pipeline turns into an abstention)."""

    def __init__(self, passages: int, hold_prefix: str = ""):
        self.passages = passages
        self.hold_prefix = hold_prefix
        self.raw = ""
        self.shown = ""

    def feed(self, delta: str) -> str:
        self.raw += delta
        if self.hold_prefix and self.hold_prefix.upper().startswith(self.raw.strip().upper()[: len(self.hold_prefix)]):
            return ""
        cut = len(self.raw)
        for pattern in (_PARTIAL_TAIL, _OPEN_FENCE, _SPACE_TAIL):
            if tail := pattern.search(self.raw, 0, cut):
                cut = tail.start()
        return self._advance(render(self.raw[:cut].lstrip(), Renumbering(self.passages)))

    def finish(self, final: str) -> str:
        """What the final (verified) text adds to what was shown."""
        return self._advance(final)

    def _advance(self, rendered: str) -> str:
        if not rendered.startswith(self.shown):  # cannot happen for well-formed cuts; show nothing new
            return ""
        delta, self.shown = rendered[len(self.shown) :], rendered
        return delta


# ---------------------------------------------------------------------------- claims

_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_QUOTE_PAIRS = (("“", "”"), ("「", "」"), ("\"", "\""))


_MARKER_WITH_GAP = re.compile(rf"[ \t]*{MARKER.pattern}")


def _clean(text: str) -> str:
    """Claim text without its markers (and the space before them)."""
    return _MARKER_WITH_GAP.sub("", text).strip().rstrip("…").strip()


def _unclosed(text: str) -> bool:
    return text.count("“") > text.count("”") or text.count("「") > text.count("」")


def _items(answer: str) -> list[str]:
    """Lines, with a quotation that runs over several lines kept in one item; a quotation never
    closed falls back to one item per line."""
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
    """The quoted words of an item: from the first opening mark to the last closing one."""
    for opening, closing in _QUOTE_PAIRS:
        a, b = item.find(opening), item.rfind(closing)
        if a >= 0 and b > a:
            return item[a + 1 : b]
    return None


def _is_framing(line: str, framing: frozenset[str]) -> bool:
    bare = line.strip()
    return (bare in framing or bare.endswith((":", "："))
            or (bare.startswith(("(", "（")) and bare.endswith((")", "）"))))


_LEADING_MARKERS = re.compile(rf"^(?:\s*{MARKER.pattern})+")


def _sentences_with_markers(body: str) -> Iterator[str]:
    """Sentences of a line; markers written after a full stop join the sentence before."""
    pending = ""
    for sentence in sentences(body, max_chars=2000):
        lead = _LEADING_MARKERS.match(sentence)
        if lead and pending:
            pending += " " + lead.group(0).strip()
            sentence = sentence[lead.end():].strip()
            if not sentence:
                continue
        if pending:
            yield pending
        pending = sentence
    if pending:
        yield pending


def split_claims(answer: str, framing: frozenset[str] = frozenset()) -> list[Claim]:
    """The claims an answer makes and the markers each carries.

    - Framing lines (`framing`: the answerers' fixed phrases; lines ending in a colon; lines in
      parentheses) make no claim.
    - A line that quotes (“…”, 「…」, "…") is one claim: the quoted words.
    - Any other line is split into sentences; a sentence without a marker takes those of the
      next sentence on its line that has some (citing at the end of a run), else the previous.
    - A claim without any marker cites nothing, so it can never be supported.
    """
    claims: list[Claim] = []
    for item in _items(answer):
        if _is_framing(item, framing):
            continue
        quote = _quoted(item)
        if quote is not None:
            if text := _clean(quote):
                claims.append(Claim(text, cited_numbers(item)))
            continue
        parts = [s for s in _sentences_with_markers(_BULLET.sub("", item.strip(), count=1)) if _clean(s)]
        cites = [cited_numbers(s) for s in parts]
        for i, sentence in enumerate(parts):
            own = cites[i] or next((c for c in cites[i + 1 :] if c), None) or next(
                (c for c in reversed(cites[:i]) if c), [])
            claims.append(Claim(_clean(sentence), own))
    return claims


def answer_body(answer: str, framing: frozenset[str] = frozenset()) -> str:
    """The answer without framing lines and markers: where key facts are looked for."""
    items = [_clean(_BULLET.sub("", item, count=1)) for item in _items(answer) if not _is_framing(item, framing)]
    return "\n".join(item for item in items if item)


def _bigrams(text: str) -> set[str]:
    text = re.sub(r"\s+", " ", text.lower())
    return {text[i : i + 2] for i in range(len(text) - 1)}


def cited_sentence(text: str, claims: list[str]) -> str | None:
    """The sentence of `text` a citation's claims rest on: a quoted claim itself, else the sentence
    sharing the most character pairs with them (a paraphrase, or a translation's numbers and names)."""
    for claim in claims:
        quote = claim.strip().strip("“”\"").strip()
        if quote and quote in text:
            return quote
    wanted = set().union(*(_bigrams(c) for c in claims)) if claims else set()
    best, overlap = None, 0
    for sentence in sentences(text):
        shared = len(_bigrams(sentence) & wanted)
        if shared > overlap:
            best, overlap = sentence, shared
    return best
