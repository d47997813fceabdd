"""The question set: loading, validation (all problems at once, with line numbers) and filters.

Schema of `eval/questions.jsonl`, one JSON object per line (blank lines are ignored):

    id                str, unique
    question          str
    language          "en" | "zh"
    answerable        bool          (false exactly when type is "unanswerable")
    type              "factual" | "paraphrase" | "who-said" | "multi-part" | "speaker" | "unanswerable"
    expected_speaker  str | null
    gold              [{"source": file name in data/interviews, "quote": exact substring of it}]
                      (at least one for answerable questions, none for unanswerable ones)
    reference_answer  str
    key_facts         [str]
    split             "dev" | "test"

A gold quote's span is where it occurs in its source file (`text.find(quote)`; every occurrence
counts if the exact quote is repeated), as half-open `[start, end)` character offsets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rag.settings import BUNDLED_CORPUS
from rag.text import detect_language

from .metrics import GoldSpan

DEFAULT_QUESTIONS = Path(__file__).resolve().parent / "questions.jsonl"
LANGUAGES = ("en", "zh")
TYPES = ("factual", "paraphrase", "who-said", "multi-part", "speaker", "unanswerable")
SPLITS = ("dev", "test")
FILTER_KEYS = {"lang": "language", "language": "language", "type": "type", "speaker": "speaker",
               "split": "split", "id": "id", "answerable": "answerable"}
CROSS_LINGUAL = "en → zh-only files"  # English questions whose gold sits only in Chinese-only files


class DatasetError(Exception):
    def __init__(self, path: Path, errors: list[str]):
        self.path = path
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s) in {path}:\n" + "\n".join(f"  {e}" for e in errors))


@dataclass(frozen=True)
class Gold:
    source: str
    quote: str
    spans: tuple[GoldSpan, ...]


@dataclass
class Question:
    id: str
    question: str
    language: str
    answerable: bool
    type: str
    expected_speaker: str | None
    gold: list[Gold]
    reference_answer: str
    key_facts: list[str]
    split: str
    line: int = 0
    cross_lingual: bool = False  # English question, gold only in Chinese-only files
    history: list[dict] = field(default_factory=list)  # earlier turns of a follow-up question
    extra: dict = field(default_factory=dict)

    @property
    def gold_spans(self) -> list[GoldSpan]:
        return [s for g in self.gold for s in g.spans]

    @property
    def speaker_label(self) -> str:
        return self.expected_speaker or "(none)"

    def to_json(self) -> dict:
        return {
            "id": self.id, "question": self.question, "language": self.language, "answerable": self.answerable,
            "type": self.type, "expected_speaker": self.expected_speaker, "split": self.split,
            "gold": [{"source": g.source, "quote": g.quote, "spans": [[s.start, s.end] for s in g.spans]}
                     for g in self.gold],
            "reference_answer": self.reference_answer, "key_facts": self.key_facts,
            "cross_lingual": self.cross_lingual, "history": self.history,
        }


# ---------------------------------------------------------------------------- corpus

@lru_cache(maxsize=32)
def read_corpus_file(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def find_spans(text: str, quote: str) -> tuple[tuple[int, int], ...]:
    spans, start = [], text.find(quote)
    while start >= 0 and quote:
        spans.append((start, start + len(quote)))
        start = text.find(quote, start + 1)
    return tuple(spans)


def chinese_only_files(corpus_dir: Path) -> frozenset[str]:
    """Files whose lines are (almost) all Chinese: under 30% of their characters sit on lines
    detected as English. In the bundled corpus that is 000, 002, 003 and 004; 001 is bilingual.
    """
    out = set()
    for path in sorted(corpus_dir.glob("*")):
        if not path.is_file():
            continue
        text = read_corpus_file(path)
        english = sum(len(line) for line in text.splitlines() if line.strip() and detect_language(line) == "en")
        if text and english / len(text) < 0.3:
            out.add(path.name)
    return frozenset(out)


# ---------------------------------------------------------------------------- loading

def _check_str(obj: dict, key: str, errors: list[str], where: str, nonempty: bool = True) -> None:
    value = obj.get(key)
    if not isinstance(value, str):
        errors.append(f"{where}: {key!r} must be a string, got {type(value).__name__}")
    elif nonempty and not value.strip():
        errors.append(f"{where}: {key!r} is empty")


def _validate(obj: object, where: str, corpus_dir: Path) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{where}: expected a JSON object, got {type(obj).__name__}"]
    errors: list[str] = []
    required = ("id", "question", "language", "answerable", "type", "expected_speaker", "gold",
                "reference_answer", "key_facts", "split")
    missing = [k for k in required if k not in obj]
    if missing:
        errors.append(f"{where}: missing key(s) {', '.join(missing)}")
    for key in ("id", "question"):
        if key in obj:
            _check_str(obj, key, errors, where)
    if "reference_answer" in obj:
        _check_str(obj, "reference_answer", errors, where, nonempty=False)
    for key, allowed in (("language", LANGUAGES), ("type", TYPES), ("split", SPLITS)):
        if key in obj and obj[key] not in allowed:
            errors.append(f"{where}: {key!r} must be one of {', '.join(allowed)}; got {obj[key]!r}")
    if "answerable" in obj and not isinstance(obj["answerable"], bool):
        errors.append(f"{where}: 'answerable' must be true or false, got {obj['answerable']!r}")
    if "expected_speaker" in obj and obj["expected_speaker"] is not None and not isinstance(obj["expected_speaker"], str):
        errors.append(f"{where}: 'expected_speaker' must be a string or null")
    if "key_facts" in obj and (not isinstance(obj["key_facts"], list)
                               or not all(isinstance(f, str) and f.strip() for f in obj["key_facts"])):
        errors.append(f"{where}: 'key_facts' must be a list of non-empty strings")
    gold = obj.get("gold")
    if "gold" in obj and not isinstance(gold, list):
        errors.append(f"{where}: 'gold' must be a list")
        gold = None
    for i, g in enumerate(gold or []):
        at = f"{where}: gold[{i}]"
        if not isinstance(g, dict) or not isinstance(g.get("source"), str) or not isinstance(g.get("quote"), str):
            errors.append(f"{at} must be an object with string 'source' and 'quote'")
            continue
        if not g["quote"]:
            errors.append(f"{at}: 'quote' is empty")
            continue
        path = corpus_dir / g["source"]
        if "/" in g["source"] or not path.is_file():
            errors.append(f"{at}: source file {g['source']!r} not found in {corpus_dir}")
            continue
        if g["quote"] not in read_corpus_file(path):
            errors.append(f"{at}: quote not found in {g['source']}: {g['quote'][:60]!r}")
    history = obj.get("history", [])
    if not isinstance(history, list) or not all(
            isinstance(m, dict) and m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str)
            for m in history):
        errors.append(f"{where}: 'history' must be a list of {{\"role\": \"user\"|\"assistant\", \"content\": str}}")
    answerable, qtype = obj.get("answerable"), obj.get("type")
    if isinstance(answerable, bool) and qtype in TYPES:
        if answerable == (qtype == "unanswerable"):
            errors.append(f"{where}: 'answerable' is {str(answerable).lower()} but type is {qtype!r} "
                          "(only unanswerable questions are not answerable)")
    if isinstance(answerable, bool) and isinstance(gold, list):
        if answerable and not gold:
            errors.append(f"{where}: an answerable question needs at least one gold quote")
        if not answerable and gold:
            errors.append(f"{where}: an unanswerable question cannot have gold quotes")
    return errors


def load_questions(path: Path = DEFAULT_QUESTIONS, corpus_dir: Path = BUNDLED_CORPUS) -> list[Question]:
    """Parse and validate every line; raise DatasetError listing all problems."""
    path, corpus_dir = Path(path), Path(corpus_dir)
    if not path.is_file():
        raise DatasetError(path, [f"file not found: {path}"])
    errors: list[str] = []
    questions: list[Question] = []
    seen: dict[str, int] = {}
    zh_only = chinese_only_files(corpus_dir) if corpus_dir.is_dir() else frozenset()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if isinstance(obj, dict) and isinstance(obj.get("id"), str):
            where = f"line {number} ({obj['id']})"
        problems = _validate(obj, where, corpus_dir)
        if isinstance(obj, dict) and isinstance(obj.get("id"), str):
            if obj["id"] in seen:
                problems.append(f"{where}: duplicate id {obj['id']!r} (first on line {seen[obj['id']]})")
            else:
                seen[obj["id"]] = number
        if problems:
            errors.extend(problems)
            continue
        gold = [
            Gold(g["source"], g["quote"],
                 tuple(GoldSpan(g["source"], a, b) for a, b in find_spans(read_corpus_file(corpus_dir / g["source"]), g["quote"])))
            for g in obj["gold"]
        ]
        known = {"id", "question", "language", "answerable", "type", "expected_speaker", "gold",
                 "reference_answer", "key_facts", "split", "history"}
        questions.append(Question(
            id=obj["id"], question=obj["question"], language=obj["language"], answerable=obj["answerable"],
            type=obj["type"], expected_speaker=obj["expected_speaker"], gold=gold,
            reference_answer=obj["reference_answer"], key_facts=list(obj["key_facts"]), split=obj["split"],
            line=number, history=list(obj.get("history", [])),
            cross_lingual=bool(obj["language"] == "en" and gold and all(g.source in zh_only for g in gold)),
            extra={k: v for k, v in obj.items() if k not in known},
        ))
    if not questions and not errors:
        errors.append("no questions in the file")
    if errors:
        raise DatasetError(path, errors)
    return questions


# ---------------------------------------------------------------------------- filters

def parse_filters(specs: tuple[str, ...] | list[str]) -> dict[str, set[str]]:
    """`lang=en`, `type=factual,paraphrase`, `speaker=amanda` → {field: {values}}. Raises ValueError."""
    out: dict[str, set[str]] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        key = key.strip().lower()
        if not sep or key not in FILTER_KEYS or not value.strip():
            raise ValueError(
                f"bad filter {spec!r}: use KEY=VALUE with KEY one of {', '.join(sorted(set(FILTER_KEYS)))}"
            )
        out.setdefault(FILTER_KEYS[key], set()).update(v.strip().lower() for v in value.split(",") if v.strip())
    return out


def _matches(q: Question, field_name: str, values: set[str]) -> bool:
    if field_name == "speaker":
        speaker = (q.expected_speaker or "none").lower()
        return any(v in speaker for v in values)
    if field_name == "answerable":
        return str(q.answerable).lower() in values
    return str(getattr(q, field_name)).lower() in values


def select(questions: list[Question], filters: dict[str, set[str]], split: str = "all",
           limit: int | None = None) -> list[Question]:
    chosen = [q for q in questions
              if (split == "all" or q.split == split)
              and all(_matches(q, f, values) for f, values in filters.items())]
    return chosen[:limit] if limit else chosen
