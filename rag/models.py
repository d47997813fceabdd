"""The data that flows through the pipeline: files → turns → chunks → passages → answers.

Every piece of text keeps `[char_start, char_end)` offsets into the original file, so a citation
can always be located in its source.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, asdict, dataclass, field, fields

# Speaker values that are not people: an article's own text (intros, bios, summaries,
# translator's notes) and a video narrator paraphrasing the guests.
EDITORIAL = "Editorial"
NARRATOR = "Narrator"
NON_PERSON_SPEAKERS = frozenset({EDITORIAL, NARRATOR})

# how an answer cites its passages: [1], [2-3], [1, 4], 【1】, optionally linked ([1](#source-1))
MARKER_NUMBERS = r"\d{1,3}(?:\s*[-–]\s*\d{1,3})?(?:\s*[,，、;；]\s*\d{1,3}(?:\s*[-–]\s*\d{1,3})?)*"
MARKER = re.compile(rf"[\[【]\s*(?P<numbers>{MARKER_NUMBERS})\s*[\]】](?P<link>\([^)\s]*\))?")


@dataclass(frozen=True)
class Span:
    """A piece of normalised text and where it sits in the source file."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Unit:
    """The smallest piece a chunk is built from: a sentence (or subtitle window).

    In a bilingual source `parallel` holds the same sentence in the other language.
    """

    text: str
    start: int
    end: int
    parallel: Span | None = None
    starts_paragraph: bool = False


@dataclass(frozen=True)
class Turn:
    """One speaker's uninterrupted words, or one editorial/narration block."""

    source: str
    title: str
    speaker: str | None  # canonical person, EDITORIAL, NARRATOR, a user file's own label, or None
    subject: str | None  # the person the text is about (the speaker themself for speech)
    language: str  # "zh" or "en": the language of `units[*].text`
    section: str | None
    units: tuple[Unit, ...]
    index: int  # position among the file's turns, for neighbour context
    parallel_language: str | None = None

    @property
    def text(self) -> str:
        return join_units(self.units, self.language)

    @property
    def char_start(self) -> int:
        return self.units[0].start

    @property
    def char_end(self) -> int:
        last = self.units[-1]
        return max(last.end, last.parallel.end if last.parallel else last.end)


def join_units(units: tuple[Unit, ...] | list[Unit], language: str, parallel: bool = False) -> str:
    """Units as readable text: paragraphs on their own lines, sentences run on."""
    sentence_gap = "" if language == "zh" else " "
    parts: list[str] = []
    for i, unit in enumerate(units):
        if i:
            parts.append("\n" if unit.starts_paragraph else sentence_gap)
        parts.append(unit.parallel.text if parallel and unit.parallel else unit.text)
    return "".join(parts)


@dataclass(frozen=True)
class Chunk:
    """What gets indexed: a token-budgeted slice of one turn (one speaker)."""

    id: str
    source: str
    title: str
    speaker: str | None
    subject: str | None
    language: str
    section: str | None
    text: str
    char_start: int
    char_end: int
    turn_index: int
    parallel_text: str | None = None
    parallel_language: str | None = None
    context: str = ""  # the question this turn answers, embedded with it but never shown as its text
    # what identifies the file in the index (`ingest.source_key`); `source` is only its name, for display
    source_path: str = ""
    # index-time enrichment of a Chinese chunk by an LLM (`rag.ingest.enrichment`): a one-line English
    # gist shown to English readers, and English questions it answers; both searched
    gist: str = ""
    questions: tuple[str, ...] = ()

    @property
    def attribution(self) -> str:
        """Whose words these are: a person, or an editorial/narrator summary on someone."""
        who = self.speaker or "Unattributed"
        if self.speaker in NON_PERSON_SPEAKERS and self.subject:
            who += f" on {self.subject}"
        return who

    def text_for(self, language: str | None) -> str:
        """The chunk as shown to a user asking in `language` (the bilingual file has both)."""
        if language and self.parallel_text and self.parallel_language == language:
            return self.parallel_text
        return self.text


@dataclass
class Passage:
    """A retrieved chunk with its rank and score for one query."""

    chunk: Chunk
    score: float
    rank: int = 0
    shown_text: str = ""
    signals: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        c = self.chunk
        return {
            "rank": self.rank,
            "text": self.shown_text or c.text,
            "source": c.source,
            "char_start": c.char_start,
            "char_end": c.char_end,
            "speaker": c.speaker,
            "score": round(float(self.score), 6),
            "subject": c.subject,
            "attribution": c.attribution,
            "title": c.title,
            "section": c.section,
            "language": c.language,
            "chunk_id": c.id,
            "gist": c.gist or None,
        }


@dataclass
class QueryPlan:
    """How a question was understood: worth showing when a result surprises someone."""

    question: str
    language: str
    speaker: str | None = None  # boosted or filtered person
    speaker_filter: bool = False
    source: str | None = None  # the one file whose venue the question names ("CS153 office hours")
    search_text: str = ""  # the question without the venue's name, which says where, not what
    terms: dict[str, float] = field(default_factory=dict)
    chinese_terms: list[str] = field(default_factory=list)  # glossary translations of an English question
    never_mentioned: list[str] = field(default_factory=list)  # names, or an off-topic question's words
    missing_answer_type: str | None = None  # "date"/"year"/"when"/"money"/"age"/"name"/"count" asked for, absent from the best passages
    rewritten_by: str | None = None  # "llm" or "rule" when a follow-up was rewritten to stand alone
    translations: list[str] = field(default_factory=list)  # the LLM's query expansion, searched too

    def to_json(self) -> dict:
        """The question as searched, for interfaces that show how an answer was made."""
        return {
            "searched": self.question,
            "rewritten_by": self.rewritten_by,
            "language": self.language,
            "speaker": self.speaker,
            "speaker_filter": self.speaker_filter,
            "source": self.source,
            "expansion_terms": list(self.chinese_terms),
            "expanded_queries": list(self.translations),
            "never_mentioned": list(self.never_mentioned),
            "missing_answer_type": self.missing_answer_type,
        }


@dataclass
class SearchResult:
    """What retrieval hands the answer step: the passages, how the question was read, and how
    likely the interviews answer it at all (`confidence`, in [0, 1])."""

    plan: QueryPlan
    passages: list[Passage]
    confidence: float



@dataclass
class Citation:
    """Passage `n` of the answer's sources; `supported`: whether it backs a claim that cites it
    (None when nothing was checked, e.g. an abstention)."""

    n: int
    passage: Passage
    supported: bool | None = None
    quote: str | None = None  # the sentence of the passage (as shown) that the citing claims rest on

    def to_json(self) -> dict:
        body = self.passage.to_json()
        return {"n": self.n, **{k: v for k, v in body.items() if k != "score"}, "supported": self.supported,
                "quote": self.quote}


@dataclass
class Claim:
    """One sentence (or quoted line) of an answer, the citations it carries, and the verdict."""

    text: str
    cited: list[int]
    supported: bool | None = None

    def to_json(self) -> dict:
        return {"text": self.text, "citations": self.cited, "supported": self.supported}


@dataclass
class Answer:
    question: str
    text: str
    abstained: bool
    citations: list[Citation]
    passages: list[Passage]
    backend: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    confidence: float | None = None  # the retrieval's: how likely the interviews answer at all
    claims: list[Claim] = field(default_factory=list)
    invalid_citations: list[str] = field(default_factory=list)  # markers removed: no such passage
    fallback: str | None = None  # why the configured LLM's answer was replaced by the extractive one
    query: QueryPlan | None = None  # the question as searched (a follow-up rewritten to stand alone)
    model: str | None = None
    check: dict | None = None  # the LLM answerability check's verdict (rag.retrieve.coverage.CheckResult)
    request_id: str | None = None  # the id of its log line (rag.logs): what a user quotes in a report

    @property
    def unsupported(self) -> list[Claim]:
        return [c for c in self.claims if c.supported is False]

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "confidence": self.confidence,
            "citations": [c.to_json() for c in self.citations],
            "claims": [c.to_json() for c in self.claims],
            "invalid_citations": self.invalid_citations,
            "fallback": self.fallback,
            "query": self.query.to_json() if self.query else None,
            "passages": [p.to_json() for p in self.passages],
            "backend": self.backend,
            "model": self.model,
            "check": self.check,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
            "request_id": self.request_id,
        }


def chunk_metadata(chunk: Chunk) -> dict:
    """Flat metadata for a vector store (no None values, no lists: Chroma rejects them)."""
    flat = {k: ("" if v is None else v) for k, v in asdict(chunk).items() if k != "id"}
    return {**flat, "questions": "\n".join(chunk.questions)}


_STORED_FIELDS = tuple(f for f in Chunk.__dataclass_fields__ if f != "id")  # in Chunk's order, after the id
_OPTIONAL_FIELDS = frozenset({"speaker", "subject", "section", "parallel_text", "parallel_language"})
_DEFAULTS = {f.name: f.default for f in fields(Chunk) if f.default is not MISSING}
_QUESTIONS = _STORED_FIELDS.index("questions")  # stored as lines (Chroma takes no lists)


def chunk_from_metadata(chunk_id: str, meta: dict) -> Chunk:
    """Inverse of `chunk_metadata`: "" back to None for the optional fields, the questions back to
    a tuple; fields older code did not store take their defaults. Positional, in one pass:
    start-up builds every chunk with it (83k at 100×)."""
    values = [None if v == "" and k in _OPTIONAL_FIELDS else v
              for k in _STORED_FIELDS for v in (meta.get(k, _DEFAULTS.get(k)),)]
    values[_QUESTIONS] = tuple(q for q in (values[_QUESTIONS] or "").split("\n") if q)
    return Chunk(chunk_id, *values)
