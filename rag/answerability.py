"""Signs that the interviews cannot answer a question, whatever the retrieval scores say.

Retrieval always returns its nearest passages, and for a question on a near-miss topic they
look as good as for a real one. These checks look instead for what would have to be in the
corpus for an answer to exist:
- names it never mentions: Peru, GPT-5, 中国, 珠穆朗玛峰;
- model versions it never mentions: "Claude 3.7 Sonnet" (Claude 3.5 and Sonnet 3.5 are there,
  3.7 is not);
- a date or year the question asks for and the best passages do not contain: the interviews
  mention Claude 4, but the passages about it give no release day.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

from .index import CorpusIndex
from .lexicon import glossary, proper_nouns, segment, stem, stopwords
from .speakers import RESOURCES, SpeakerTable
from .text import has_cjk

_NAME_OR_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9.'’-]*[A-Za-z0-9]|[\u3400-\u9fff]+")
# "Claude 3.7", "Sonnet 3.5", "3.5 Haiku": a capitalised name next to a short version number
_VERSION = re.compile(r"(?<![A-Za-z])([A-Z][A-Za-z]+)\s*(\d{1,2}(?:\.\d)?)(?![\d.]*\d)|(?<![\d.])(\d{1,2}(?:\.\d)?)\s+([A-Z][A-Za-z]+)(?![A-Za-z])")

_ASKS_FOR_DATE = re.compile(r"哪一?天|几月几[日号]|什么日期|哪个日期|\bwhat date\b|\bwhich day\b|\bon what day\b", re.I)
_ASKS_FOR_YEAR = re.compile(r"哪一?年|\b(?:what|which) year\b", re.I)
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE = re.compile(
    rf"\d{{1,2}}\s*月\s*\d{{1,2}}\s*[日号]|[一二三四五六七八九十]{{1,2}}月[一二三四五六七八九十]{{1,3}}[日号]"
    rf"|\b(?:{_MONTHS})\s+{_DAY}\b|\b{_DAY}(?:\s+of)?\s+(?:{_MONTHS})\b"
    r"|\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b", re.I
)
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)|[〇零一二三四五六七八九]{4}年|今年|明年|去年|\b(?:this|next|last) year\b", re.I)


@lru_cache(maxsize=1)
def model_families() -> frozenset[str]:
    """Names whose version numbers are checked (`resources/model_families.txt`)."""
    lines = (RESOURCES / "model_families.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def unknown_names(question: str, index: CorpusIndex, speakers: SpeakerTable) -> list[str]:
    """Specific names in the question that the corpus never mentions, in any language.

    Specific: a capitalised word or an identifier with a digit (Peru, GPT-5, DeepSeek-R1), a
    model version (Claude 3.7), or a Chinese proper noun (see `_chinese_names`). Known: in the index
    vocabulary, in the glossary (either language) or the dictionary bridge, or a person's alias.
    """
    vocabulary = index.lexical.vocab
    bridge = index.lexical.extras.get("bridge", {})
    stop = stopwords()

    def known(word: str) -> bool:
        key = stem(word)
        return (key in stop or key in vocabulary or key in bridge or key in glossary().chinese_terms
                or bool(glossary().match([key])) or bool(speakers.mentioned(word)))

    def foreign_chinese(piece: str) -> bool:
        parts = [p for p in segment(piece, search=True) if len(p) >= 2] or [piece]
        return not known(piece) and not any(known(p) for p in parts)

    unknown: list[str] = []
    for m in _NAME_OR_IDENTIFIER.finditer(question):
        word = m.group(0)
        if has_cjk(word):
            unknown.extend(_chinese_names(word, foreign_chinese))
        elif any(ch.isdigit() for ch in word):  # an identifier (GPT-5, ASL-3) is known whole or not at all
            if not known(word):
                unknown.append(word)
        elif word[0].isupper() and not known(word):
            # AI-accelerated: only its capitalised parts are names
            if not all(known(part) for part in word.split("-") if part[:1].isupper()):
                unknown.append(word)
    unknown.extend(v for v in _unknown_versions(question, index) if not any(n in v for n in unknown))
    return unknown


def _chinese_names(text: str, foreign: Callable[[str], bool]) -> list[str]:
    """Runs of consecutive foreign words in Chinese text that are proper nouns by CC-CEDICT.

    The run, or one of its words, must be a proper noun (中国; 英伟达, which jieba cuts into
    英/伟达). Foreign common words are not enough: questions written blind to these rules
    showed that colloquial Chinese (背地里, 下死功夫, 三观各异) is full of words the interviews
    never use, and refusing those questions cost more than it caught (README, "Quality").
    """
    names = []
    run: list[str] = []
    for piece in [*segment(text), ""]:  # "" ends the last run
        if piece and foreign(piece):
            run.append(piece)
            continue
        whole = "".join(run)
        names.extend([whole] if whole in proper_nouns() else [p for p in run if p in proper_nouns()])
        run = []
    return names


def _unknown_versions(question: str, index: CorpusIndex) -> list[str]:
    """Model name + version pairs ("Claude 3.7") found in neither order anywhere in the corpus."""
    unknown = []
    for m in _VERSION.finditer(question):
        name, version = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        if name.lower() not in model_families():  # "Give 3 examples", "Part 2"
            continue
        n, v = re.escape(name.lower()), re.escape(version)
        # not \b: Chinese characters are word characters, and "认为Claude 4会" must count
        pattern = rf"(?<![a-z]){n}\s*{v}(?![\d.]*\d)|(?<![\d.]){v}\s*{n}(?![a-z])"
        if not index.mentions(pattern):
            unknown.append(m.group(0))
    return unknown


def missing_answer_type(question: str, evidence: Iterable[str]) -> str | None:
    """"date" or "year" when the question asks for one and none of the evidence texts has one."""
    texts = list(evidence)
    for kind, asks, found in (("date", _ASKS_FOR_DATE, _DATE), ("year", _ASKS_FOR_YEAR, _YEAR)):
        if asks.search(question) and not any(found.search(t) for t in texts):
            return kind
    return None
