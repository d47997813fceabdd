"""Does the corpus cover the question? Signs that the interviews cannot answer it, whatever the
retrieval scores say, and what an answer would quote from each passage.

Retrieval always returns its nearest passages, and for a question on a near-miss topic they
look as good as for a real one. These checks look instead for what would have to be in the
corpus for an answer to exist:
- names it never mentions: Peru, GPT-5, 中国, 珠穆朗玛峰;
- model versions it never mentions: "Claude 3.7 Sonnet" (Claude 3.5 and Sonnet 3.5 are there,
  3.7 is not), and products named after a model: "Claude Code";
- a date, year, amount of money or age the question asks for and the best passages do not
  contain: the interviews mention Claude 4, but the passages about it give no release day; and
  no date, year or month for "when was it published?";
- a name the question asks for ("what was it called?") that nothing an answer would quote gives,
  and a title ("the title of her dissertation") that nothing it would quote gives as a title;
- a count the question asks for ("how many parameters…", "几个人") that no clause of the best
  passages about the question's words states;
- a question with no distinctive word of the interviews at all, only words they never use (not
  even by meaning) and the commonest words of Chinese (红烧肉应该怎么做: 应该 and 做 say nothing,
  红烧肉 is nowhere).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache

from rag.index.corpus import CorpusIndex
from rag.lexicon import (
    cedict_glosses,
    common_chinese_words,
    glossary,
    proper_nouns,
    segment,
    stem,
    stopwords,
    tokenize,
)
from rag.models import Passage
from rag.speakers import RESOURCES, SpeakerTable
from rag.text import CJK, has_cjk, sentences

_NAME_OR_IDENTIFIER = re.compile(rf"[A-Za-z][A-Za-z0-9.'’-]*[A-Za-z0-9]|[{CJK}]+")
# "Claude 3.7", "Sonnet 3.5", "3.5 Haiku": a capitalised name next to a short version number
# "Claude Code", "Claude Max": a model name and a capitalised word, a product of its own
_PRODUCT = re.compile(r"(?<![A-Za-z])([A-Z][A-Za-z]+)\s+([A-Z][a-z]+)(?![A-Za-z])")
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
# when something came out ("When did Amanda publish her blog post…", "Claude Code 是什么时候推出的") is
# answered by a date, a year or a month ("三月份，Claude 3 发布了")
_ASKS_WHEN_RELEASED = re.compile(
    r"\bwhen (?:did|was|were|will)\b[^?？]*?\b(?:publish|release|launch|announce|found|come out|came out)"
    r"|(?:什么时候|何时|啥时候)(?:正式)?(?:发布|推出|发表|上线|成立|公布)", re.I)
_WHEN = re.compile(rf"{_DATE.pattern}|{_YEAR.pattern}|[一二三四五六七八九十\d]{{1,2}}\s*月|\b(?:{_MONTHS})\b", re.I)
# money is asked for by "how expensive", or by "how much" with a word that means money whatever
# follows (not pay/spend/worth/invest: "pay attention", "spend time", "worth it", "invest effort"),
# unless the question also names another measure ("the time cost of prompting")
_ASKS_HOW_EXPENSIVE = re.compile(r"多贵|\bhow (?:expensive|pricey)\b", re.I)
_ASKS_FOR_AMOUNT = re.compile(r"多少|\bhow much\b", re.I)
_MONEY_WORDS_ZH = frozenset("钱 多少钱 价格 价钱 定价 费用 成本 营收 收入 利润 估值 融资 薪水 工资 美元".split())
_MONEY_WORD_EN = re.compile(r"\b(?:costs?|prices?|pricing|priced|revenues?|profits?|valuation|salary|salaries|money|dollars?|funding)\b", re.I)
_OTHER_MEASURE = re.compile(r"时间|精力|比例|百分之|\b(?:time|effort|attention|percent|percentage)\b|%", re.I)
_NUMERAL = r"[\d零一两二三四五六七八九十百千万亿几数多来]"
_MONEY = re.compile(rf"美元|美金|人民币|欧元|英镑|{_NUMERAL}\s*(?:元|块钱)|[$＄€£¥￥]\s*\d|\bdollars?\b|\b(?:USD|RMB)\b", re.I)
# "what was the name Amanda gave her bike", "what's the actual title of…", "那个系统叫什么名字"
_ASKS_FOR_NAME = re.compile(
    r"\bwhat(?:'s| is| was| were)? (?:the |its |his |her |their )?(?:actual |exact |real |full )?(?:name|title)s?\b"
    r"|\bwhat name\b|\bwhat (?:is|was) it called\b|叫什么|什么名字|名字是什么|名称是什么", re.I)
# what a name looks like in a quote: a title, a short quotation, or a capitalised word inside a sentence
_TITLE_OR_QUOTATION = re.compile(r"《[^》]{1,30}》|“[^”]{1,30}”|\"[^\"]{1,30}\"")
_CAPITALISED = re.compile(r"(?<![A-Za-z])[A-Z][A-Za-z0-9'’-]+")
_SENTENCE_END = ".?!。？！…:：\"“”"
# a title asked for is given as one: a quotation, or words in title case ("Machines of Loving Grace"),
# not a lone capitalised word ("I did my masters at Oxford")
_ASKS_FOR_TITLE = re.compile(r"\btitles?\b|标题|题目|书名", re.I)
_TITLE_CASE = re.compile(r"(?<![A-Za-z])[A-Z][a-z]+(?:\s+(?:(?:of|the|and|for|in|on|a)\s+)?[A-Z][A-Za-z]+)+")
_ASKS_FOR_AGE = re.compile(r"多大了|多大年纪|多大岁数|年纪多大|年龄多大|年龄是多少|几岁|多少岁|\bhow old\b|\bwhat age\b|\bat what age\b", re.I)
_AGE = re.compile(
    rf"{_NUMERAL}+\s*岁|\byears? old\b|\b\d{{1,3}}-year-old\b|\bage(?:d| of)?\s+\d|"
    r"\bin (?:my|his|her|their) (?:early |mid-?|late )?(?:teens|twenties|thirties|forties|fifties)\b", re.I)

# a count: "how many", or 几/多少 with the measure word of what is counted (几个人, 多少页); not
# 这几年/前几天 ("these few years"); 多少钱/几岁 are money and age, and a score (多少分) is a percentage
_COUNTERS = "个位名条种项次年天页人篇家层倍本场"
_ASKS_FOR_COUNT = re.compile(rf"\bhow many\b|(?<![这那前近])几[{_COUNTERS}]|多少[{_COUNTERS}]", re.I)
_NUMBER_WORD = ("two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
                "hundreds?|thousands?|millions?|billions?|dozens?")
# a stated count: a number (not inside an identifier, GPT-2 or CS153, nor a percentage: "50% on
# SWE-bench" counts nothing), a number with a measure word, or a number word (十个人, 数百万个,
# 两三页, "ten people"); 一 alone is the article of 一个
_QUANTITY = re.compile(
    rf"(?<![A-Za-z\d.-])\d[\d,]*(?:\.\d+)?(?![\d.]*[A-Za-z\d%-])|\d+\s*[万亿千百{_COUNTERS}]"
    rf"|[两二三四五六七八九十百千万亿数][一二三四五六七八九十百千万亿]*\s*[{_COUNTERS}]|\b(?:{_NUMBER_WORD})\b", re.I)
_NUMBER = re.compile(r"[\d.,]+")
_CLAUSE_BREAK = re.compile(r"[，,；;：:—（）()]+")
# a span of time ("一两天", "five years", "三个月") counts things only for a question about time ("干了几年")
_TIME_UNIT = r"(?:个?(?:年|天|月|周|小时)|\s*(?:years?|days?|months?|weeks?|hours?)\b)"
_TIME_SPAN = re.compile(rf"(?:\d+|[一两二三四五六七八九十百千几数]+|\b(?:{_NUMBER_WORD}|a few|several))\s*{_TIME_UNIT}", re.I)
_ASKS_FOR_TIME_SPAN = re.compile(rf"(?<![这那前近])(?:几|多少){_TIME_UNIT}|\bhow many\s+{_TIME_UNIT}", re.I)


@lru_cache(maxsize=1)
def model_families() -> frozenset[str]:
    """Names whose version numbers are checked (`resources/model_families.txt`)."""
    lines = (RESOURCES / "model_families.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


class _CorpusWords:
    """What the corpus knows of a word, in any language: the index vocabulary, the glossary
    (either language), the dictionary bridge, or a person's alias."""

    def __init__(self, index: CorpusIndex, speakers: SpeakerTable):
        self.lexical = index.lexical
        self.bridge = self.lexical.extras.get("bridge", {})
        self.speakers = speakers
        self.stop = stopwords()

    def known(self, word: str) -> bool:
        key = stem(word)
        return key in self.stop or key in self.lexical.vocab or key in self.bridge or self._domain(word)

    def distinctive(self, word: str) -> bool:
        """Known, and telling of a topic: a domain term, a person, an English word or identifier
        the corpus uses (Claude, AI, RLHF), or a Chinese one outside the commonest words of the
        language (模型 is, 应该 and 做 are not). Not "rare in the corpus": Claude and 模型 are in
        a fifth of the passages because they are its topic."""
        key = stem(word)
        if key in self.stop or not self.known(word):
            return False
        return self._domain(word) or not has_cjk(word) or word not in common_chinese_words()

    def foreign_chinese(self, piece: str) -> bool:
        """Neither the piece nor any of its two-character-plus words is known."""
        return not self.known(piece) and not any(self.known(p) for p in self._parts(piece))

    def distinctive_chinese(self, piece: str) -> bool:
        return any(self.distinctive(p) for p in [piece, *self._parts(piece)])

    @staticmethod
    def _parts(piece: str) -> list[str]:
        return [p for p in segment(piece, search=True) if len(p) >= 2]

    def _domain(self, word: str) -> bool:
        """A glossary term in either language, a word of one ("Scottish" of "Scottish accent"), or a person."""
        key = stem(word)
        return key in glossary().chinese_terms or key in glossary().english_words or bool(self.speakers.mentioned(word))


def unknown_names(question: str, index: CorpusIndex, speakers: SpeakerTable) -> list[str]:
    """Specific names in the question that the corpus never mentions, in any language.

    Specific: a capitalised word or an identifier with a digit (Peru, GPT-5, DeepSeek-R1), a
    model version (Claude 3.7), or a Chinese proper noun (see `_chinese_names`).
    """
    words = _CorpusWords(index, speakers)
    unknown: list[str] = []
    for m in _NAME_OR_IDENTIFIER.finditer(question):
        word = m.group(0)
        if has_cjk(word):
            unknown.extend(_chinese_names(word, words.foreign_chinese))
        elif any(ch.isdigit() for ch in word):  # an identifier (GPT-5, ASL-3) is known whole or not at all
            if not words.known(word):
                unknown.append(word)
        elif word[0].isupper() and not words.known(word):
            # AI-accelerated: only its capitalised parts are names
            if not all(words.known(part) for part in word.split("-") if part[:1].isupper()):
                unknown.append(word)
    unknown.extend(v for v in _unknown_versions(question, index) + _unknown_products(question, index)
                   if not any(n in v for n in unknown))
    return unknown


def foreign_topic(question: str, index: CorpusIndex, speakers: SpeakerTable) -> list[str]:
    """The words of an off-topic question that the corpus never uses, or [] if it is on topic.

    Off topic: not one distinctive word of the corpus (`_CorpusWords.distinctive`), and some it
    never uses, not even by meaning. One distinctive word is enough to stay on topic, which keeps
    colloquial questions answerable ("阿曼达背地里…" has 阿曼达, "Claude会不会失控" has Claude),
    and so is a word whose CC-CEDICT meaning the corpus has in other words (拍马屁 "to flatter":
    奉承). 红烧肉 ("red braised pork") has none.
    """
    words = _CorpusWords(index, speakers)
    foreign: list[str] = []
    for m in _NAME_OR_IDENTIFIER.finditer(question):
        piece = m.group(0)
        for word in segment(piece) if has_cjk(piece) else [piece]:
            if stem(word) in words.stop:
                continue
            if has_cjk(word):
                if not words.foreign_chinese(word):
                    if words.distinctive_chinese(word):
                        return []
                elif len(word) >= 2:  # a lone character is too ambiguous to name
                    foreign.append(word)
            elif words.known(word):
                if words.distinctive(word):
                    return []
            else:
                foreign.append(word)
    meanings = cedict_glosses({w for w in foreign if has_cjk(w)}) if foreign else {}
    if any(gloss in words.bridge for glosses in meanings.values() for gloss in glosses):
        return []
    return foreign


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


def _unknown_products(question: str, index: CorpusIndex) -> list[str]:
    """A model name followed by a capitalised word the corpus never puts after it: "Claude Code" is
    a product the interviews never mention, though they use both words ("Claude Opus" is a model,
    left to `_unknown_versions`)."""
    unknown = []
    for m in _PRODUCT.finditer(question):
        name, product = m.group(1).lower(), m.group(2).lower()
        if name not in model_families() or product in model_families():
            continue
        if not index.mentions(rf"(?<![a-z]){re.escape(name)}\s*{re.escape(product)}(?![a-z])"):
            unknown.append(m.group(0))
    return unknown


def _asks_for_money(question: str) -> bool:
    if _ASKS_HOW_EXPENSIVE.search(question):
        return True
    if not _ASKS_FOR_AMOUNT.search(question) or _OTHER_MEASURE.search(question):
        return False
    # whole jieba words, so that 确定价值观 and 评估值得 do not read as 定价 and 估值
    return bool(_MONEY_WORD_EN.search(question) or _MONEY_WORDS_ZH.intersection(segment(question)))


_ANSWER_TYPES: tuple[tuple[str, Callable[[str], object], re.Pattern[str]], ...] = (
    ("date", _ASKS_FOR_DATE.search, _DATE),
    ("year", _ASKS_FOR_YEAR.search, _YEAR),
    ("when", _ASKS_WHEN_RELEASED.search, _WHEN),
    ("money", _asks_for_money, _MONEY),
    ("age", _ASKS_FOR_AGE.search, _AGE),
)


def missing_answer_type(question: str, evidence: Iterable[str]) -> str | None:
    """The kind of answer ("date", "year", "when", "money", "age") the question asks for when none of the
    evidence texts contains one: "how much did training Claude 3 Opus cost" over passages that
    name no currency cannot be answered from them."""
    texts = list(evidence)
    for kind, asks, found in _ANSWER_TYPES:
        if asks(question) and not any(found.search(t) for t in texts):
            return kind
    return None


# how a sentence that states something ends (a heading or a list line ends otherwise)
_STATED = frozenset(".!。！…\"”’'）)")


def _numbered_sentences(passage: Passage) -> list[tuple[int, str]]:
    """(paragraph number, sentence) of the text a reader is shown, sentence by sentence within
    paragraphs: a quote never runs across a heading or list line."""
    text = passage.shown_text or passage.chunk.text
    return [(n, sentence) for n, para in enumerate(text.split("\n")) for sentence in sentences(para)] or [(0, text)]


def best_quote(passage: Passage, terms: dict[str, float], max_chars: int = 220) -> tuple[str, float]:
    """The sentence(s) sharing most with the question, and that overlap: what an answer quotes
    from the passage, and so what the answerability check reads."""
    numbered = _numbered_sentences(passage)
    short = 40 if passage.chunk.language == "zh" else 90
    sentences_in = Counter(paragraph for paragraph, _ in numbered)
    scored = []
    for i, (paragraph, sentence) in enumerate(numbered):
        tokens = set(tokenize(sentence))
        overlap = sum(w for t, w in terms.items() if t in tokens)
        ending = sentence.rstrip()[-1:]
        question_penalty = 0.5 if ending in ("?", "？") else 0.0
        # a heading or a timeline entry ("机械可解释性：深入神经网络的内部") shares the question's
        # words and states nothing: its words count half, so a sentence that also matches wins
        heading = sentences_in[paragraph] == 1 and len(sentence) < short and ending not in _STATED
        scored.append(((overlap / 2 if heading else overlap) - question_penalty - 0.01 * i, overlap, i))
    _, overlap, best = max(scored)
    paragraph, quote = numbered[best]
    # a very short sentence says little alone: carry on into the next one of its paragraph
    if best + 1 < len(numbered) and numbered[best + 1][0] == paragraph and len(quote) < short:
        gap = "" if passage.chunk.language == "zh" and passage.shown_text == passage.chunk.text else " "
        quote += gap + numbered[best + 1][1]
    if len(quote) > max_chars:
        quote = quote[: max_chars].rstrip() + "…"
    return quote, overlap


def quoted_evidence(passages: list[Passage], terms: dict[str, float], count: int = 3) -> list[str]:
    """What an answer would quote from the best `count` passages: the best sentence of each."""
    return [best_quote(p, terms)[0] for p in passages[:count]]


def missing_name(question: str, passages: list[Passage], terms: dict[str, float]) -> bool:
    """The question asks what something is called, and what an answer would quote names nothing
    the question does not already name: no title, no short quotation, no capitalised word inside
    a sentence. "What name did Amanda give the bike that got stolen?" finds her saying she named
    it, and no name; quoting that would cite a passage for a fact it does not state. A title asked
    for must look like one: "the title of Amanda's dissertation" is not "Oxford"."""
    if not _ASKS_FOR_NAME.search(question):
        return False
    asked = question.lower()
    title = bool(_ASKS_FOR_TITLE.search(question))
    for quote in quoted_evidence(passages, terms):
        if any(m.group(0).lower() not in asked for m in _TITLE_OR_QUOTATION.finditer(quote)):
            return False
        if title:
            if any(m.group(0).lower() not in asked for m in _TITLE_CASE.finditer(quote)):
                return False
            continue
        for m in _CAPITALISED.finditer(quote):
            before = quote[: m.start()].rstrip()
            if before and before[-1] not in _SENTENCE_END and m.group(0).lower() not in asked:
                return False
    return True


def missing_count(question: str, passages: list[Passage], terms: dict[str, float], best: int = 3) -> bool:
    """The question asks how many, and no clause of the `best` passages that shares a word with
    it states a quantity the question does not already give. "How many parameters does Claude
    3.5 Sonnet have?" finds Sonnet 3.5 compared with Sonnet 3 and Opus 3, and no count: the
    version numbers and years around it are not one. Any clause, not just the quote: the count
    often sits beside the words that matched ("雇佣10名律师" for "how many lawyers"); but in the
    same clause, as "一千名员工" does not count the members of the trust named after the comma."""
    if not _ASKS_FOR_COUNT.search(question):
        return False
    words = {t for t in terms if not _NUMBER.fullmatch(t)}  # "3.5" of "Claude 3.5" says nothing about what is counted
    return not any(
        words.intersection(tokenize(clause)) and _stated_quantities(clause, question)
        for passage in passages[:best] for _, sentence in _numbered_sentences(passage)
        for clause in _CLAUSE_BREAK.split(sentence)
    )


def _stated_quantities(sentence: str, question: str) -> list[str]:
    """The quantities a sentence states, leaving out model versions, years, spans of time unless
    the question asks for one, and numbers the question gives."""
    plain = _YEAR.sub(" ", _VERSION.sub(_drop_model_version, sentence))
    if not _ASKS_FOR_TIME_SPAN.search(question):
        plain = _TIME_SPAN.sub(" ", plain)
    return [m.group(0) for m in _QUANTITY.finditer(plain) if m.group(0).strip() not in question]


def _drop_model_version(m: re.Match[str]) -> str:
    """A `_VERSION` match blanked out when it is a model's ("Sonnet 3.5"), kept otherwise ("Part 2")."""
    return " " if (m.group(1) or m.group(4)).lower() in model_families() else m.group(0)
