"""Does a passage support a claim? The check every answer's citations go through.

Used by the pipeline after each answer (an English sentence citing a Chinese passage included)
and by the eval's heuristic judge. A claim is supported by a passage when either
- lexical containment reaches the lexical threshold: the share of the claim's units found in the
  passage (units: lower-cased English words without stopwords, Chinese character bigrams,
  after NFKC); an English word also counts when its glossary or CC-CEDICT Chinese rendering
  occurs in the passage (the same sources as the retriever's bridge), or
- contrastive semantic similarity reaches the semantic threshold: the best cosine between the
  claim and a sentence (or two adjacent sentences) of the passage, minus what the claim scores
  against unrelated corpus sentences of the passage's language.
The thresholds are measured, not guessed: `rag eval calibrate --save` fits them on the
hand-labelled pairs in `eval/faithfulness_labels.jsonl` and writes `resources/support_calibration.json`.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.lexicon import dictionary_bridge, glossary, stem, stopwords, tokenize
from rag.speakers import RESOURCES
from rag.text import CJK_RUN, detect_language, sentences

CALIBRATION = RESOURCES / "support_calibration.json"
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


_LATIN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?(?:\.[0-9]+)?")
_LABEL = re.compile(r"\*\*[^*\n]{1,30}[:：]\*\*")


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def lexical_units(text: str) -> set[str]:
    """Lower-cased English words without stopwords, and Chinese character bigrams."""
    text = _norm(text)
    units: set[str] = set()
    for run in CJK_RUN.findall(text):
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
    pieces = [s for line in _LABEL.sub(" ", text).splitlines() for s in sentences(line) if len(s) > 1]
    if not pieces:
        return [text.strip()] if text.strip() else []
    out = list(pieces)
    out += [a + (" " if a[-1:].isascii() else "") + b for a, b in zip(pieces, pieces[1:])
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
    """What the support check borrows from the corpus: the English→Chinese bridge (glossary +
    CC-CEDICT restricted to the corpus vocabulary) and, per language, 40 evenly spaced corpus
    sentences as the background a similarity is measured against.
    """

    def __init__(self, bridge_words: dict[str, list[str]], texts: list[str], per_language: int = 40):
        self.bridge = Bridge(bridge_words, _glossary_phrases())
        pool: dict[str, list[str]] = {"en": [], "zh": []}
        for text in texts:
            for line in text.splitlines():
                for sentence in windows(line)[: max(1, len(windows(line)) // 2 + 1)]:
                    if 15 <= len(sentence) <= 120 and not sentence.startswith(("!", "[", "http", "#")):
                        pool[detect_language(sentence)].append(sentence)
        self.background = {lang: items[:: max(1, len(items) // per_language)][:per_language]
                           for lang, items in pool.items() if items}

    @classmethod
    def from_texts(cls, texts: list[str]) -> "CorpusResources":
        """Built from raw texts: the bridge restricted to their vocabulary (a pass of jieba)."""
        vocabulary: set[str] = set()
        for text in texts:
            vocabulary.update(tokenize(text))
        return cls(dictionary_bridge(vocabulary), texts)


@dataclass
class Thresholds:
    lexical: float = 1.0
    semantic: float = float("inf")  # "never": the labelled sample showed no gain from it


def bundled_thresholds(path: Path = CALIBRATION) -> Thresholds:
    """The thresholds `rag eval calibrate --save` measured on the labelled sample."""
    data = json.loads(path.read_text(encoding="utf-8"))["calibration"]
    semantic = data.get("semantic_threshold")
    return Thresholds(data["lexical_threshold"], float("inf") if semantic is None else semantic)


class SupportChecker:
    """Lexical containment (bridged to Chinese) or contrastive embedding similarity.

    semantic(claim, evidence) = best cosine between the claim and a sentence (or two adjacent
    sentences) of the evidence, minus the mean of the claim's three best cosines against the
    background sentences of the evidence's language. e5 cosines are all high (0.75–0.95) and
    sit lower across languages; subtracting what the claim scores against unrelated corpus
    sentences of the same language puts English→Chinese and Chinese→Chinese pairs on one scale.
    """

    def __init__(self, embedder, resources: CorpusResources, thresholds: Thresholds | None = None,
                 background_cache: Path | None = None):
        self.cache = EmbeddingCache(embedder)
        self.embedder_name = getattr(embedder, "name", type(embedder).__name__)
        self.resources = resources
        self.thresholds = thresholds or Thresholds()
        self._background_cache_dir = background_cache
        self._background_vectors: dict[str, np.ndarray] | None = None

    @property
    def _background(self) -> dict[str, np.ndarray]:
        if self._background_vectors is None:  # embedded on first use only
            self._background_vectors = self._load_background()
        return self._background_vectors

    def _load_background(self) -> dict[str, np.ndarray]:
        background = self.resources.background
        path = None
        if self._background_cache_dir is not None:
            digest = hashlib.sha256(f"{SCORER_VERSION}|{self.embedder_name}".encode())
            digest.update(json.dumps(background, ensure_ascii=False, sort_keys=True).encode())
            path = Path(self._background_cache_dir) / f"background-{digest.hexdigest()[:16]}.npz"
            if path.is_file():
                with np.load(path) as saved:
                    return {lang: saved[lang] for lang in saved.files}
        vectors = {lang: self.cache.vectors(items) for lang, items in background.items()}
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, **vectors)
        return vectors

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
        if lexical >= self.thresholds.lexical:
            return Verdict(True, lexical, None)  # no need to embed
        if not np.isfinite(self.thresholds.semantic):
            return Verdict(False, lexical, None)  # calibrated off: embedding could not change the verdict
        semantic = self.semantic(claim, evidence)
        return Verdict(semantic is not None and semantic >= self.thresholds.semantic, lexical, semantic)
