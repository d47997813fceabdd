"""The data that flows through the pipeline: files → turns → chunks → passages → answers.

Every piece of text keeps `[char_start, char_end)` offsets into the original file, so a citation
can always be located in its source.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Speaker values that are not people: an article's own text (intros, bios, summaries,
# translator's notes) and a video narrator paraphrasing the guests.
EDITORIAL = "Editorial"
NARRATOR = "Narrator"
NON_PERSON_SPEAKERS = frozenset({EDITORIAL, NARRATOR})


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
        }


@dataclass
class Citation:
    n: int
    passage: Passage

    def to_json(self) -> dict:
        body = self.passage.to_json()
        return {"n": self.n, **{k: v for k, v in body.items() if k != "score"}}


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

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "confidence": self.confidence,
            "citations": [c.to_json() for c in self.citations],
            "passages": [p.to_json() for p in self.passages],
            "backend": self.backend,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }


def chunk_metadata(chunk: Chunk) -> dict:
    """Flat metadata for a vector store (no None values: Chroma rejects them)."""
    return {k: ("" if v is None else v) for k, v in asdict(chunk).items() if k != "id"}


def chunk_from_metadata(chunk_id: str, meta: dict) -> Chunk:
    """Inverse of `chunk_metadata`: "" back to None for the optional fields."""
    optional = {"speaker", "subject", "section", "parallel_text", "parallel_language"}
    fields = {k: meta.get(k) for k in Chunk.__dataclass_fields__ if k != "id"}
    return Chunk(id=chunk_id, **{k: (None if k in optional and v == "" else v) for k, v in fields.items()})
