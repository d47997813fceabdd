"""Abstention on questions written blind to the abstention rules: `python -m eval.blind_probe`.

The 13 unanswerable questions of `questions.jsonl` were read while `rag/retrieve/coverage.py` was
written, so they flatter it. `blind_probes/` holds 126 unanswerable questions and 364
answerable ones, written in eight batches by helpers who never saw the rules (eval/README.md
says what each batch is and when it was read); batches 6 to 8 are split into a dev half and a
test half that is only ever counted. Each answerable probe also measures retrieval (hit@5 on its
evidence). Re-run this after touching retrieval or abstention; it uses the index `Settings`
points at (RAG_DATA_DIR), indexing the bundled interviews first if it is empty.
"""

from __future__ import annotations

import json
from pathlib import Path

from .dataset import read_corpus_file
from rag.factory import build_pipeline
from rag.settings import BUNDLED_CORPUS

PROBES = Path(__file__).resolve().parent / "blind_probes"


def load_probes(name: str) -> list[dict]:
    return [json.loads(line) for line in (PROBES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def covers_evidence(probe: dict, chunk) -> bool:
    """Does the chunk overlap the probe's evidence quote in its source file?"""
    if chunk.source != probe["source"]:
        return False
    text = read_corpus_file(BUNDLED_CORPUS / probe["source"])
    start = text.find(probe["evidence"])
    end = start + len(probe["evidence"])
    return chunk.char_start < end and start < chunk.char_end


def evidence_hit(probe: dict, passages) -> bool:
    """Does a passage overlap the probe's evidence quote in its source file?"""
    return any(covers_evidence(probe, p.chunk) for p in passages)


def _group(probe: dict) -> str:
    """Batches 6 to 8 are split into a dev half (may be read) and a test half (only counted)."""
    batch = probe.get("batch", 1)
    return f"batch {batch}" + (f" {probe['split']}" if "split" in probe else "")


def main() -> None:
    pipe = build_pipeline()
    pipe.ensure_ingested()
    unanswerable, answerable = load_probes("unanswerable.jsonl"), load_probes("answerable.jsonl")
    kept = {q["id"] for q in unanswerable if not pipe.ask(q["question"]).abstained}
    refused, hits = set(), set()
    for q in answerable:
        answer = pipe.ask(q["question"])
        refused |= {q["id"]} if answer.abstained else set()
        hits |= {q["id"]} if evidence_hit(q, answer.passages[:5]) else set()
    for group in sorted({_group(q) for q in unanswerable + answerable}, key=lambda g: (len(g.split()[1]), g)):
        u = [q["id"] for q in unanswerable if _group(q) == group]
        a = [q["id"] for q in answerable if _group(q) == group]
        parts = [f"unanswerable that abstain {len(set(u) - kept)}/{len(u)}"] if u else []
        english = {q["id"] for q in answerable if _group(q) == group and q["language"] == "en"}
        parts += [f"answerable that abstain {len(refused & set(a))}/{len(a)}", f"hit@5 {len(hits & set(a))}/{len(a)}",
                  f"English {len(hits & english)}/{len(english)}"] if a else []
        print(f"{group}: " + ", ".join(parts))
    print(f"all:     unanswerable that abstain {len(unanswerable) - len(kept)}/{len(unanswerable)}, "
          f"answerable that abstain {len(refused)}/{len(answerable)}, hit@5 {len(hits)}/{len(answerable)}")


if __name__ == "__main__":
    main()
