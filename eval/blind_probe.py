"""Abstention on questions written blind to the abstention rules: `python -m eval.blind_probe`.

The 13 unanswerable questions of `questions.jsonl` were read while `rag/answerability.py` was
written, so they flatter it. `blind_probes/` holds 68 unanswerable questions and 140
answerable ones, written in five batches by helpers who never saw the rules (eval/README.md
says what each batch is and when it was read). Re-run this after touching abstention; it uses the
index `Settings` points at (RAG_DATA_DIR), indexing the bundled interviews first if it is empty.
"""

from __future__ import annotations

import json
from pathlib import Path

from rag.factory import build_pipeline

PROBES = Path(__file__).resolve().parent / "blind_probes"


def load_probes(name: str) -> list[dict]:
    return [json.loads(line) for line in (PROBES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    pipe = build_pipeline()
    pipe.ensure_ingested()
    unanswerable, answerable = load_probes("unanswerable.jsonl"), load_probes("answerable.jsonl")
    kept = {q["id"] for q in unanswerable if not pipe.ask(q["question"]).abstained}
    refused = {q["id"] for q in answerable if pipe.ask(q["question"]).abstained}
    for batch in sorted({q.get("batch", 1) for q in unanswerable + answerable}):
        u = [q["id"] for q in unanswerable if q.get("batch", 1) == batch]
        a = [q["id"] for q in answerable if q.get("batch", 1) == batch]
        parts = [f"unanswerable that abstain {len(set(u) - kept)}/{len(u)}"] if u else []
        parts += [f"answerable that abstain {len(refused & set(a))}/{len(a)}"] if a else []
        print(f"batch {batch}: " + ", ".join(parts))
    print(f"all:     unanswerable that abstain {len(unanswerable) - len(kept)}/{len(unanswerable)} "
          f"(answered: {', '.join(sorted(kept)) or '-'})")
    print(f"         answerable that abstain {len(refused)}/{len(answerable)} ({', '.join(sorted(refused)) or '-'})")


if __name__ == "__main__":
    main()
