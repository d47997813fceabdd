"""Text helpers that keep every character traceable to its offset in the source file.

Normalisation applied to source text (documented in the README, relied on by the tests):
markdown markup is dropped (`**`, images, link targets, blockquote `>`, list bullets, `★`,
backslash escapes), a hard line wrap inside a paragraph is joined (with nothing between two
Chinese characters, with a space otherwise), and runs of spaces collapse to one.
`comparable()` applies the same reduction to any string, so
`comparable(chunk.text) in comparable(file_text[chunk.char_start:chunk.char_end])` holds.
"""

from __future__ import annotations

import re

from rag.models import Span

# The one definition of a Chinese character (CJK ideographs, extension A, compatibility forms);
# every other pattern that means "Chinese" is built from it.
CJK = "\u3400-\u9fff\uf900-\ufaff"
CJK_RUN = re.compile(f"[{CJK}]+")
_CJK = re.compile(f"[{CJK}]")
_CJK_OR_PUNCT = re.compile(f"[\u3000-\u303f{CJK}\uff00-\uffef“”‘’…—]")

# Markup removed inside a line: images, the target of links (their label is kept), bold markers,
# backslash escapes and stray emphasis underscores next to bold.
_INLINE_DROP = re.compile(
    r"!\[[^\]]*\]\([^)]*\)"  # image
    r"|\]\([^)]*\)"  # link target, the `[` is dropped below
    r"|\*\*+"  # bold
    r"|\\(?=[-*_\[\]()#>!.])"  # markdown escape
    r"|(?<![\w])_(?=\*)|(?<=\*)_(?![\w])"
    r"|(?<![\w\]])\[(?=[^\]]*\]\()"  # link opening bracket
)
# Markup at the start of a line: blockquote markers, the ★ of editorial boxes, list bullets.
_LINE_PREFIX = re.compile(r"^[ \t]*(?:>[ \t]?)*[ \t]*(?:★[ \t]*)?(?:(?:[*+-]|\d{1,3}[.)])[ \t]+)?")


def is_cjk(ch: str) -> bool:
    return bool(_CJK.match(ch))


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def without_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with the character spans cut out (a name, a venue), spaces collapsed."""
    for start, end in sorted(set(spans), reverse=True):
        text = text[:start] + " " + text[end:]
    return " ".join(text.split())


def detect_language(text: str) -> str:
    """'zh' when a meaningful share of letters are Chinese characters, else 'en'."""
    cjk = len(_CJK.findall(text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return "zh" if cjk and cjk * 3 >= latin * 0.5 else "en"


def clean_with_offsets(raw: str, base: int) -> tuple[str, list[int]]:
    """Strip markup from `raw` (which starts at file offset `base`) and join wrapped lines.

    Returns the clean text and, for each of its characters, the file offset it came from.
    """
    out: list[str] = []
    pos: list[int] = []
    line_start = 0
    for line in raw.split("\n"):
        prefix = _LINE_PREFIX.match(line)
        i = prefix.end() if prefix else 0
        pieces: list[tuple[str, int]] = []
        for m in _INLINE_DROP.finditer(line, i):
            pieces.extend((ch, base + line_start + k) for k, ch in enumerate(line[i : m.start()], i))
            i = m.end()
        pieces.extend((ch, base + line_start + k) for k, ch in enumerate(line[i:], i))
        # trim the line, collapse inner runs of spaces
        while pieces and pieces[0][0].isspace():
            pieces.pop(0)
        while pieces and pieces[-1][0].isspace():
            pieces.pop()
        if pieces:
            if out:
                joiner = "" if _CJK_OR_PUNCT.match(out[-1]) and _CJK_OR_PUNCT.match(pieces[0][0]) else " "
                if joiner:
                    out.append(joiner)
                    pos.append(pos[-1])
            for ch, p in pieces:
                if ch.isspace():
                    if out and out[-1] == " ":
                        continue
                    ch = " "
                out.append(ch)
                pos.append(p)
        line_start += len(line) + 1
    return "".join(out), pos


# A sentence ends at Chinese/English terminal punctuation (plus closing quotes/brackets).
_SENTENCE_END = re.compile(r"[。！？!?；;…]+[”’\"')）]*|\.(?:\s|$)[”’\"')）]*")
_SOFT_BREAK = re.compile(r"[，,、：:]")


def split_sentences(text: str, offsets: list[int], max_chars: int = 160) -> list[Span]:
    """Split clean text into sentences with file offsets; over-long ones break at commas."""
    spans: list[Span] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        _emit(text, offsets, start, m.end(), max_chars, spans)
        start = m.end()
    _emit(text, offsets, start, len(text), max_chars, spans)
    return spans


def sentences(text: str, max_chars: int = 160) -> list[str]:
    """The sentences of a text that has no file offsets (a chunk, a passage, an answer)."""
    return [span.text for span in split_sentences(text, list(range(len(text))), max_chars)]


def _emit(text: str, offsets: list[int], a: int, b: int, max_chars: int, spans: list[Span]) -> None:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    if a >= b:
        return
    if b - a > max_chars:
        # break at the last soft boundary before max_chars (or hard at max_chars)
        window = text[a : a + max_chars]
        cut = max((m.end() for m in _SOFT_BREAK.finditer(window)), default=0)
        if cut < max_chars // 3:
            space = window.rfind(" ")
            cut = space + 1 if space > max_chars // 3 else max_chars
        _emit(text, offsets, a, a + cut, max_chars, spans)
        _emit(text, offsets, a + cut, b, max_chars, spans)
        return
    spans.append(Span(text[a:b], offsets[a], offsets[b - 1] + 1))


_COMPARABLE_DROP = re.compile(r"!\[[^\]]*\]\([^)]*\)|\]\([^)]*\)|[\s*>\\\[★_]")


def comparable(text: str) -> str:
    """Reduce text to what survives normalisation, for comparing it with raw source text."""
    return _COMPARABLE_DROP.sub("", text)
