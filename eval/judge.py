"""Judges: does this evidence support this claim, and how close is an answer to the reference?

`Judge` is the seam an LLM judge plugs into later (`rag eval --judge NAME`). A judge is built by
a factory registered in `JUDGES` (or published by another package under the entry-point group
`rag.eval_judges`), which receives the pipeline's embedder, its settings and the path of the
labelled sample. Built in: "heuristic" (below) and "llm" (the configured backend answers yes/no).

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
cached (`rag/resources/support_calibration.json`, which the pipeline's own check reads, then the data directory) and redone when the labels, corpus,
embedder or scorer change. The report shows the thresholds, the accuracy on the sample and the
leave-one-out accuracy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rag.llm.backends import build_backend
from rag.ingest.parsing import iter_text_files
from rag.prompts import load_prompt
from rag.settings import BUNDLED_CORPUS
from rag.answer.support import CALIBRATION as BUNDLED_CALIBRATION
from rag.answer.support import SCORER_VERSION, CorpusResources, SupportChecker, Thresholds, Verdict

DEFAULT_LABELS = Path(__file__).resolve().parent / "faithfulness_labels.jsonl"


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


@lru_cache(maxsize=4)
def corpus_resources(files: tuple[Path, ...]) -> CorpusResources:
    return CorpusResources.from_texts([p.read_text(encoding="utf-8") for p in files])


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


class HeuristicJudge(SupportChecker):
    """The pipeline's support check (`rag.answer.support`), calibrated on the labelled pairs."""

    name = "heuristic"

    def __init__(self, embedder, files: list[Path] | None = None, lexical_threshold: float = 1.0,
                 semantic_threshold: float = float("inf"), calibration: Calibration | None = None,
                 cache_dir: Path | None = None):
        self.files = sorted(files or [p for p in iter_text_files([BUNDLED_CORPUS]) if p.is_file()])
        super().__init__(embedder, corpus_resources(tuple(self.files)),
                         Thresholds(lexical_threshold, semantic_threshold), cache_dir)
        self.calibration = calibration
        self.calibration_source_key = ""

    @property
    def lexical_threshold(self) -> float:
        return self.thresholds.lexical

    @property
    def semantic_threshold(self) -> float:
        return self.thresholds.semantic

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
        judge.thresholds = Thresholds(judge.calibration.lexical_threshold, judge.calibration.semantic_threshold)
        return judge

    def save_calibration(self, path: Path | None = None) -> Path:
        path = path or BUNDLED_CALIBRATION
        path.write_text(json.dumps({"key": self.calibration_source_key, "calibration": self.calibration.to_json()},
                                   ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return path

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


class LLMJudge:
    """Support decided by the configured LLM (`prompts/judge.toml`: yes or no); answer similarity
    and the report's thresholds come from the heuristic judge it wraps."""

    name = "llm"

    def __init__(self, backend, heuristic: HeuristicJudge):
        self.backend = backend
        self.heuristic = heuristic
        self._verdicts: dict[tuple[str, str], Verdict] = {}

    def supports(self, claim: str, evidence: str) -> Verdict:
        key = (claim, evidence)
        if key not in self._verdicts:
            reply = "".join(self.backend.stream(load_prompt("judge").messages(claim=claim, passage=evidence), max_tokens=5))
            self._verdicts[key] = Verdict(reply.strip().lower().startswith(("yes", "是")))
        return self._verdicts[key]

    def similarity(self, text: str, reference: str) -> float | None:
        return self.heuristic.similarity(text, reference)

    def describe(self) -> dict:
        return {"name": self.name, "backend": self.backend.name, "model": self.backend.model,
                "prompt": "prompts/judge.toml"}


def _llm(embedder, settings=None, labels_path: Path = DEFAULT_LABELS) -> Judge:
    backend = build_backend(settings) if settings is not None else None
    if backend is None:
        raise ValueError("the llm judge needs an LLM: set RAG_LLM (or pass --llm) to a backend")
    return LLMJudge(backend, _heuristic(embedder, settings, labels_path))


JUDGES: dict[str, JudgeFactory] = {"heuristic": _heuristic, "llm": _llm}


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
