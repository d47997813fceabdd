"""Judges: does this evidence support this claim, and how close is an answer to the reference?

`Judge` is the seam an LLM judge plugs into later (`rag eval --judge NAME`). A judge is built by
a factory registered in `JUDGES` (or published by another package under the entry-point group
`rag.eval_judges`), which receives the pipeline's embedder, its settings and the path of the
labelled sample. Only the built-in "heuristic" judge exists now.

The heuristic judge needs no model beyond the pipeline's own embedder. A claim is supported by
a piece of evidence when either
- lexical containment reaches `lexical_threshold`: the share of the claim's units found in the
  evidence (units: lower-cased English words without stopwords, Chinese character bigrams,
  after NFKC); an English word also counts when its glossary or CC-CEDICT Chinese rendering
  occurs in the evidence (the same sources as the retriever's bridge), or
- contrastive semantic similarity reaches `semantic_threshold`: the best cosine between the
  claim and any sentence (or two adjacent sentences) of the evidence, embedded by the
  pipeline's multilingual embedder, minus what the claim scores against unrelated corpus
  sentences of the evidence's language. This is what lets an English key fact match a Chinese
  answer that the bridge misses.
Both thresholds are calibrated on `eval/faithfulness_labels.jsonl` (hand-labelled (claim,
passage, supported) pairs from this corpus) by maximising balanced accuracy, ties going to the
stricter rule; a test that adds nothing on the sample gets the threshold "never". The result is
cached (`eval/calibration.json`, then the data directory) and redone when the labels, corpus,
embedder or scorer change. The report shows the thresholds, the accuracy on the sample and the
leave-one-out accuracy.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rag.lexicon import dictionary_bridge, glossary, stem, stopwords, tokenize
from rag.parsing import iter_text_files
from rag.settings import BUNDLED_CORPUS
from rag.text import detect_language

DEFAULT_LABELS = Path(__file__).resolve().parent / "faithfulness_labels.jsonl"
BUNDLED_CALIBRATION = Path(__file__).resolve().parent / "calibration.json"
SCORER_VERSION = "heuristic-4"  # bump when the scores change, so cached calibrations are redone


@dataclass
class Verdict:
    supported: bool
    lexical: float | None = None
    semantic: float | None = None

    def to_json(self) -> dict:
        return {"supported": self.supported,
                "lexical": None if self.lexical is None else round(self.lexical, 3),
                "semantic": None if self.semantic is None else round(self.semantic, 3)}


@runtime_checkable
class Judge(Protocol):
    name: str

    def supports(self, claim: str, evidence: str) -> Verdict:
        """Is `claim` stated or directly implied by `evidence`?"""
        ...

    def similarity(self, text: str, reference: str) -> float | None:
        """Semantic similarity of an answer to the reference answer (None if not measured)."""
        ...

    def describe(self) -> dict:
        """What the report shows about this judge (thresholds, calibration, model)."""
        ...


# ---------------------------------------------------------------------------- heuristics

_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_LATIN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?(?:\.[0-9]+)?")
_SENTENCE_BREAK = re.compile(r"(?<=[。！？；])|(?<=[.!?;])\s+|\n+")
_LABEL = re.compile(r"\*\*[^*\n]{1,30}[:：]\*\*")


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def lexical_units(text: str) -> set[str]:
    """Lower-cased English words without stopwords, and Chinese character bigrams."""
    text = _norm(text)
    units: set[str] = set()
    for run in _CJK_RUN.findall(text):
        units.update([run] if len(run) == 1 else (run[i : i + 2] for i in range(len(run) - 1)))
    stop = stopwords()
    for word in _LATIN.findall(text):
        word = stem(word)
        if word not in stop:
            units.add(word)
    return units


def _variants(word: str) -> list[str]:
    """The word and its likely base forms ("worked" → "work", "scaling" → "scale")."""
    forms = [word]
    for suffix in ("ing", "ed"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            stem_ = word[: -len(suffix)]
            forms += [stem_, stem_ + "e"] + ([stem_[:-1]] if len(stem_) > 2 and stem_[-1] == stem_[-2] else [])
    return forms


def containment(claim: str, evidence: str, bridge: "Bridge | None" = None) -> float:
    """Share of the claim's lexical units found in the evidence (0 for an empty claim).

    With a `bridge` an English word also counts as found when a glossary phrase it belongs to,
    or one of its dictionary translations, occurs in the evidence: that is how "worked with
    Andrew Ng" finds 与吴恩达一起工作.
    """
    claim_units = lexical_units(claim)
    if not claim_units:
        return 0.0
    evidence_units = lexical_units(evidence)
    if bridge is None:
        return len(claim_units & evidence_units) / len(claim_units)
    chinese = [u for u in claim_units if not u.isascii()]
    found = sum(1 for u in chinese if u in evidence_units)
    flat = _norm(evidence)
    words = [stem(w) for w in _LATIN.findall(_norm(claim))]
    covered: set[int] = set()
    longest = max((len(k) for k in bridge.phrases), default=0)
    for size in range(min(longest, len(words)), 0, -1):  # glossary phrases, longest first
        for i in range(len(words) - size + 1):
            terms = bridge.phrases.get(tuple(words[i : i + size]))
            if terms and not covered.intersection(range(i, i + size)) and any(t in flat for t in terms):
                covered.update(range(i, i + size))
    stop = stopwords()
    content = list(dict.fromkeys(i for i, w in enumerate(words) if w not in stop))
    seen_words: dict[str, bool] = {}
    for i in content:
        w = words[i]
        if w not in seen_words:
            forms = _variants(w)
            seen_words[w] = (i in covered or any(f in evidence_units for f in forms)
                             or any(t in flat for f in forms for t in bridge.words.get(f, ())))
        elif i in covered:
            seen_words[w] = True
    total = len(chinese) + len(seen_words)
    return (found + sum(seen_words.values())) / total if total else 0.0


def windows(text: str, max_windows: int = 40) -> list[str]:
    """Sentences of `text`, plus a short sentence joined to its neighbour (subtitle lines and
    clipped quotes state one fact across two pieces): what a claim is compared with."""
    sentences = [s.strip() for s in _SENTENCE_BREAK.split(_LABEL.sub(" ", text)) if s and len(s.strip()) > 1]
    if not sentences:
        return [text.strip()] if text.strip() else []
    out = list(sentences)
    out += [a + (" " if a[-1:].isascii() else "") + b for a, b in zip(sentences, sentences[1:])
            if min(len(a), len(b)) < 40]
    return out[:max_windows]


class EmbeddingCache:
    def __init__(self, embedder):
        self.embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}

    def vectors(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            encoded = np.asarray(self.embedder.encode_documents(missing), dtype=np.float32)
            norms = np.linalg.norm(encoded, axis=1, keepdims=True)
            encoded = encoded / np.where(norms == 0, 1, norms)
            self._vectors.update(zip(missing, encoded))
        return np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)

    def best_cosine(self, claim: str, evidence: str) -> float | None:
        pieces = windows(evidence)
        if not claim.strip() or not pieces:
            return None
        vecs = self.vectors([claim] + pieces)
        return float(np.max(vecs[1:] @ vecs[0]))

    def cosine(self, a: str, b: str) -> float | None:
        if not a.strip() or not b.strip():
            return None
        va, vb = self.vectors([a, b])
        return float(va @ vb)


@dataclass
class Bridge:
    """English → Chinese for the lexical test: `words` (one stemmed English word → Chinese words
    of the corpus whose CC-CEDICT gloss is that word) and `phrases` (stemmed glossary phrase →
    its Chinese renderings), from the core's glossary and CC-CEDICT bridge."""

    words: dict[str, list[str]]
    phrases: dict[tuple[str, ...], list[str]]


def _glossary_phrases() -> dict[tuple[str, ...], list[str]]:
    """Stemmed glossary phrase → its Chinese renderings, keyed by this judge's own word split."""
    phrases: dict[tuple[str, ...], list[str]] = {}
    for entry in glossary().entries:
        chinese = [c.lower() for c in entry.chinese]
        for phrase in entry.english:
            key = tuple(stem(w) for w in _LATIN.findall(_norm(phrase)))
            if key:
                phrases.setdefault(key, [])
                phrases[key].extend(c for c in chinese if c not in phrases[key])
    return phrases


class CorpusResources:
    """What the heuristic judge borrows from the corpus: the English→Chinese bridge (glossary +
    CC-CEDICT restricted to the corpus vocabulary) and, per language, 40 evenly spaced corpus
    sentences as the background a similarity is measured against.
    """

    def __init__(self, files: list[Path], per_language: int = 40):
        texts = [p.read_text(encoding="utf-8") for p in files]
        vocabulary: set[str] = set()
        for text in texts:
            vocabulary.update(tokenize(text))
        self.bridge = Bridge(dictionary_bridge(vocabulary), _glossary_phrases())
        pool: dict[str, list[str]] = {"en": [], "zh": []}
        for text in texts:
            for line in text.splitlines():
                for sentence in windows(line)[: max(1, len(windows(line)) // 2 + 1)]:
                    if 15 <= len(sentence) <= 120 and not sentence.startswith(("!", "[", "http", "#")):
                        pool[detect_language(sentence)].append(sentence)
        self.background = {lang: items[:: max(1, len(items) // per_language)][:per_language]
                           for lang, items in pool.items() if items}


@lru_cache(maxsize=4)
def corpus_resources(files: tuple[Path, ...]) -> CorpusResources:
    return CorpusResources(list(files))


def _finite(value):
    """Floats rounded for JSON; an infinite threshold ("never") becomes None."""
    if isinstance(value, float):
        return None if not np.isfinite(value) else round(value, 4)
    return value


@dataclass
class LabelledPair:
    id: str
    claim: str
    passage: str
    supported: bool
    language: str = ""
    kind: str = ""


@dataclass
class Calibration:
    lexical_threshold: float
    semantic_threshold: float
    n: int
    positives: int
    accuracy: float
    balanced_accuracy: float
    loo_accuracy: float
    rows: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {k: _finite(v) for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, data: dict) -> "Calibration":
        data = {k: (float("inf") if v is None and k.endswith("threshold") else v) for k, v in data.items()}
        return cls(**data)


def load_labels(path: Path = DEFAULT_LABELS, corpus_dir: Path = BUNDLED_CORPUS) -> list[LabelledPair]:
    """Labelled pairs; a pair naming a source must quote it exactly at its offsets."""
    pairs, errors = [], []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            claim, passage, supported = obj["claim"], obj["passage"], obj["supported"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            errors.append(f"line {number}: {exc}")
            continue
        if not isinstance(supported, bool) or not isinstance(claim, str) or not isinstance(passage, str):
            errors.append(f"line {number}: claim/passage must be strings and supported a boolean")
            continue
        if obj.get("source"):
            text = (corpus_dir / obj["source"]).read_text(encoding="utf-8")
            if text[obj.get("char_start", 0) : obj.get("char_end", 0)] != passage:
                errors.append(f"line {number}: passage is not {obj['source']}[{obj.get('char_start')}:{obj.get('char_end')}]")
                continue
        pairs.append(LabelledPair(str(obj.get("id", number)), claim, passage, supported,
                                  obj.get("claim_language", ""), obj.get("kind", "")))
    if errors:
        raise ValueError(f"{path}: " + "; ".join(errors))
    return pairs


def _candidates(values: np.ndarray) -> np.ndarray:
    """Thresholds halfway between adjacent observed scores, plus 'never' (inf)."""
    u = np.unique(values)
    mids = (u[:-1] + u[1:]) / 2 if len(u) > 1 else u
    return np.concatenate([[u[0] - 1e-6] if len(u) else [], mids, [np.inf]])


def _fit(lex: np.ndarray, sem: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """(lexical, semantic) thresholds maximising balanced accuracy; ties go to stricter ones."""
    best = (-1.0, 0.0, 0.0, 0.0)
    pos, neg = labels.sum(), (~labels).sum()
    for a in _candidates(lex):
        by_lex = lex >= a
        for b in _candidates(sem):
            pred = by_lex | (sem >= b)
            tpr = (pred & labels).sum() / max(pos, 1)
            tnr = (~pred & ~labels).sum() / max(neg, 1)
            score = (tpr + tnr) / 2
            key = (score, min(a, 2.0) + min(b, 2.0))
            if key > (best[0], best[3]):
                best = (score, float(a), float(b), key[1])
    return best[1], best[2], best[0]


def calibrate(pairs: list[LabelledPair], judge: "HeuristicJudge") -> Calibration:
    if len({p.supported for p in pairs}) < 2:
        raise ValueError("the labelled sample needs both supported and unsupported pairs")
    scored = [judge.scores(p.claim, p.passage) for p in pairs]
    lex = np.array([a for a, _ in scored])
    sem = np.array([-1.0 if b is None else b for _, b in scored])
    labels = np.array([p.supported for p in pairs])
    a, b, balanced = _fit(lex, sem, labels)
    pred = (lex >= a) | (sem >= b)
    correct_loo = 0
    for i in range(len(pairs)):
        keep = np.arange(len(pairs)) != i
        la, lb, _ = _fit(lex[keep], sem[keep], labels[keep])
        correct_loo += int(((lex[i] >= la) or (sem[i] >= lb)) == labels[i])
    rows = [{"id": p.id, "kind": p.kind, "language": p.language, "supported": p.supported,
             "lexical": round(float(lex[i]), 3), "semantic": round(float(sem[i]), 3), "predicted": bool(pred[i])}
            for i, p in enumerate(pairs)]
    return Calibration(a, b, len(pairs), int(labels.sum()), float((pred == labels).mean()), float(balanced),
                       correct_loo / len(pairs), rows)


def calibration_key(embedder_name: str, labels_path: Path, files: list[Path]) -> str:
    """What a calibration depends on: scorer version, embedder, labels and corpus files."""
    digest = hashlib.sha256(f"{SCORER_VERSION}|{embedder_name}".encode())
    digest.update(Path(labels_path).read_bytes())
    for path in sorted(files):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


class HeuristicJudge:
    """Lexical containment (bridged to Chinese) or contrastive embedding similarity.

    semantic(claim, evidence) = best cosine between the claim and a sentence (or two adjacent
    sentences) of the evidence, minus the mean of the claim's three best cosines against the
    background sentences of the evidence's language. e5 cosines are all high (0.75–0.95) and
    sit lower across languages; subtracting what the claim scores against unrelated corpus
    sentences of the same language puts English→Chinese and Chinese→Chinese pairs on one scale.
    """

    name = "heuristic"

    def __init__(self, embedder, files: list[Path] | None = None, lexical_threshold: float = 1.0,
                 semantic_threshold: float = float("inf"), calibration: Calibration | None = None,
                 cache_dir: Path | None = None):
        self.cache = EmbeddingCache(embedder)
        self.embedder_name = getattr(embedder, "name", type(embedder).__name__)
        self.files = sorted(files or [p for p in iter_text_files([BUNDLED_CORPUS]) if p.is_file()])
        self.resources = corpus_resources(tuple(self.files))
        self.lexical_threshold = lexical_threshold
        self.semantic_threshold = semantic_threshold
        self.calibration = calibration
        self.calibration_source_key = ""
        self._cache_dir = cache_dir
        self._background_cache: dict[str, np.ndarray] | None = None

    @property
    def _background(self) -> dict[str, np.ndarray]:
        if self._background_cache is None:  # embedded on first use only
            self._background_cache = self._background_vectors(self._cache_dir)
        return self._background_cache

    def _background_vectors(self, cache_dir: Path | None) -> dict[str, np.ndarray]:
        background = self.resources.background
        path = None
        if cache_dir is not None:
            digest = hashlib.sha256(f"{SCORER_VERSION}|{self.embedder_name}".encode())
            digest.update(json.dumps(background, ensure_ascii=False, sort_keys=True).encode())
            path = Path(cache_dir) / f"background-{digest.hexdigest()[:16]}.npz"
            if path.is_file():
                with np.load(path) as saved:
                    return {lang: saved[lang] for lang in saved.files}
        vectors = {lang: self.cache.vectors(items) for lang, items in background.items()}
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, **vectors)
        return vectors

    @classmethod
    def calibrated(cls, embedder, labels_path: Path = DEFAULT_LABELS, files: list[Path] | None = None,
                   cache_dir: Path | None = None, fresh: bool = False) -> "HeuristicJudge":
        """A judge calibrated on the labelled pairs. The result is reused while the labels, the
        corpus, the embedder and this scorer are unchanged: from `eval/calibration.json` (saved by
        `rag eval calibrate --save`) or from `cache_dir`; otherwise it is computed (a minute).
        """
        judge = cls(embedder, files, cache_dir=cache_dir)
        key = calibration_key(judge.embedder_name, labels_path, judge.files)
        cached = Path(cache_dir) / f"calibration-{key}.json" if cache_dir is not None else None
        if not fresh:
            for path in (BUNDLED_CALIBRATION, cached):
                if path is not None and path.is_file():
                    data = json.loads(path.read_text(encoding="utf-8"))
                    if data.get("key") == key:
                        judge.calibration = Calibration.from_json(data["calibration"])
                        break
        if judge.calibration is None:
            judge.calibration = calibrate(load_labels(labels_path), judge)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                cached.write_text(json.dumps({"key": key, "calibration": judge.calibration.to_json()}), encoding="utf-8")
        judge.calibration_source_key = key
        judge.lexical_threshold = judge.calibration.lexical_threshold
        judge.semantic_threshold = judge.calibration.semantic_threshold
        return judge

    def save_calibration(self, path: Path | None = None) -> Path:
        path = path or BUNDLED_CALIBRATION
        path.write_text(json.dumps({"key": self.calibration_source_key, "calibration": self.calibration.to_json()},
                                   ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return path

    def lexical(self, claim: str, evidence: str) -> float:
        return containment(claim, evidence, self.resources.bridge)

    def semantic(self, claim: str, evidence: str) -> float | None:
        best = self.cache.best_cosine(claim, evidence)
        if best is None:
            return None
        background = self._background.get(detect_language(evidence))
        if background is None or not len(background):
            return best
        against = np.sort(background @ self.cache.vectors([claim])[0])[-3:]
        return best - float(against.mean())

    def scores(self, claim: str, evidence: str) -> tuple[float, float | None]:
        return self.lexical(claim, evidence), self.semantic(claim, evidence)

    def supports(self, claim: str, evidence: str) -> Verdict:
        lexical = self.lexical(claim, evidence)
        if lexical >= self.lexical_threshold:
            return Verdict(True, lexical, None)  # no need to embed
        if not np.isfinite(self.semantic_threshold):
            return Verdict(False, lexical, None)  # calibrated off: embedding could not change the verdict
        semantic = self.semantic(claim, evidence)
        return Verdict(semantic is not None and semantic >= self.semantic_threshold, lexical, semantic)

    def similarity(self, text: str, reference: str) -> float | None:
        return self.cache.cosine(text, reference)

    def describe(self) -> dict:
        out = {"name": self.name, "embedder": self.embedder_name,
               "lexical_threshold": _finite(self.lexical_threshold),
               "semantic_threshold": _finite(self.semantic_threshold)}
        if self.calibration:
            out["calibration"] = self.calibration.to_json()
        return out


# ---------------------------------------------------------------------------- registry

JudgeFactory = Callable[..., Judge]


def _heuristic(embedder, settings=None, labels_path: Path = DEFAULT_LABELS) -> Judge:
    files, cache_dir = None, None
    if settings is not None:
        files = [p for p in iter_text_files(list(settings.corpus)) if p.is_file()] or None
        cache_dir = Path(settings.data_dir) / "eval-cache"
    return HeuristicJudge.calibrated(embedder, labels_path, files, cache_dir)


JUDGES: dict[str, JudgeFactory] = {"heuristic": _heuristic}


def judge_factories() -> dict[str, JudgeFactory]:
    found = dict(JUDGES)
    for ep in entry_points(group="rag.eval_judges"):
        found.setdefault(ep.name, ep)
    return found


def make_judge(name: str, embedder, settings=None, labels_path: Path = DEFAULT_LABELS) -> Judge:
    factories = judge_factories()
    if name not in factories:
        raise ValueError(f"unknown judge {name!r}; available: {', '.join(sorted(factories))}")
    factory = factories[name]
    if hasattr(factory, "load"):  # an entry point
        factory = factory.load()
    return factory(embedder=embedder, settings=settings, labels_path=labels_path)
