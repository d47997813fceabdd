"""LLM query expansion and the LLM answerability check, measured with an instrument model.

The project ships no model; this bench points the `openai` backend at a server you started
(e.g. `python -m llama_cpp.server --model qwen2.5-coder-1.5b-instruct.gguf --port 8714`) and
asks every question twice through the real pipeline:
- offline: no LLM (the glossary/CC-CEDICT bridge, the offline abstention rules);
- with the LLM: follow-ups condensed, the question translated and searched too (expansion),
  and, when the pipeline has one, the answerability check before answering.
Answers are written by quotes in both runs (an LLM answer would cost minutes per question on a
CPU and does not change retrieval), so "refused" is the pipeline's abstention before answering.

Sets: the fresh blind batches, 6 to 8 (dev and test halves: hit@5 on the answerable ones,
refusals on both kinds), and the own eval set (`eval/questions.jsonl`, hit@5 on its answerable
questions). A test half is counted, never printed.

    python bench/bench_expansion.py --base-url http://127.0.0.1:8714/v1 [--sets blind-dev,blind-test,own]
        [--batches 6,7,8] [--every N] [--timeout 300] [--no-check | --no-expansion] [--label NAME]

Writes bench/results/expansion-<label>.json and prints a table. Needs a built index (RAG_DATA_DIR).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eval.blind_probe import covers_evidence, load_probes  # noqa: E402
from eval.dataset import load_questions  # noqa: E402
from eval.metrics import percentile  # noqa: E402
from rag.events import Completed, Retrieved  # noqa: E402
from rag.factory import build_pipeline  # noqa: E402
from rag.prompts import load_prompt  # noqa: E402
from rag.settings import Settings  # noqa: E402


def question_sets(names: list[str], every: int, near_misses: bool, batches: list[int]) -> list[dict]:
    """Rows {set, id, question, history, answerable, language, gold(chunk)}: every `every`-th
    answerable question of each set (a CPU too slow for all of them measures a fixed sample),
    and all of a blind half's near misses (few) when refusals are measured (they have no gold, no
    hit@5). Blind sets are named by batch and half: blind6-dev, blind7-test."""
    rows = []
    probes = [(p, True) for p in load_probes("answerable.jsonl")]
    probes += [(p, False) for p in load_probes("unanswerable.jsonl")] if near_misses else []
    for batch in batches:
        for half in ("dev", "test"):
            if f"blind-{half}" not in names:
                continue
            half_probes = [(p, a) for p, a in probes if p.get("batch") == batch and p["split"] == half]
            chosen = [(p, a) for p, a in half_probes if a][::every] + [(p, a) for p, a in half_probes if not a]
            rows += [{"set": f"blind{batch}-{half}", "id": p["id"], "question": p["question"], "history": [],
                      "answerable": a, "language": p["language"],
                      "gold": (lambda chunk, p=p: covers_evidence(p, chunk)) if a else None} for p, a in chosen]
    if "own" in names:
        for q in [q for q in load_questions() if q.answerable][::every]:
            gold = q.gold_spans
            rows.append({"set": "own", "id": q.id, "question": q.question, "history": q.history, "answerable": True,
                         "language": q.language,
                         "gold": lambda chunk, gold=gold: any(
                             g.source == chunk.source and chunk.char_start < g.end and g.start < chunk.char_end
                             for g in gold)})
    return rows


def run(pipe, row: dict) -> dict:
    """One ask through `pipe`, answered by quotes: what was searched, hit@5 (and the gold's rank
    in the top 5), refused, timings."""
    retrieved = answer = None
    for event in pipe.ask_stream(row["question"], row["history"], k=5):
        if isinstance(event, Retrieved):
            retrieved = event
        elif isinstance(event, Completed):
            answer = event.answer
    gold = row["gold"]
    rank = next((p.rank for p in retrieved.result.passages[:5] if gold(p.chunk)), None) if gold else None
    return {"hit5": rank is not None if gold else None, "gold_rank": rank,
            "refused": answer.abstained, "expanded_queries": retrieved.query.translations,
            "check": answer.check, "timings_ms": {k: round(v) for k, v in answer.timings_ms.items()}}


def summarise(rows: list[dict]) -> dict:
    out = {}
    for name in sorted({r["set"] for r in rows}):
        mine = [r for r in rows if r["set"] == name]
        answerable = [r for r in mine if r["answerable"]]
        near = [r for r in mine if not r["answerable"]]
        entry = {"answerable": len(answerable), "near_misses": len(near)}
        for mode in ("offline", "llm"):
            entry[mode] = {
                "hit5": sum(r[mode]["hit5"] for r in answerable) / max(1, len(answerable)),
                "hit5_en": sum(r[mode]["hit5"] for r in answerable if r["language"] == "en")
                / max(1, sum(r["language"] == "en" for r in answerable)),
                "answerable_refused": sum(r[mode]["refused"] for r in answerable),
                "near_misses_refused": sum(r[mode]["refused"] for r in near)}
        out[name] = entry
    for stage in ("expansion", "check"):
        values = [r["llm"]["timings_ms"][stage] for r in rows if stage in r["llm"]["timings_ms"]]
        if values:
            out[f"{stage}_ms"] = {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95)}
    out["translated"] = sum(bool(r["llm"]["expanded_queries"]) for r in rows) / len(rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="OpenAI-compatible server, e.g. http://127.0.0.1:8714/v1")
    parser.add_argument("--sets", default="blind-dev,blind-test,own")
    parser.add_argument("--batches", default="6,7,8", help="the blind batches whose halves blind-dev/blind-test take")
    parser.add_argument("--every", type=int, default=1, help="every N-th answerable question of each set (a fixed sample)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="expansion and check timeout, s (generous: a slow CPU measures the model, not the timeout)")
    parser.add_argument("--no-check", action="store_true", help="expansion only: no answerability check")
    parser.add_argument("--no-expansion", action="store_true", help="the check alone, on offline retrieval")
    parser.add_argument("--label", default="run")
    args = parser.parse_args()

    offline = build_pipeline(Settings(llm="extractive"))
    offline.ensure_ingested()
    llm = build_pipeline(Settings(llm="openai", llm_base_url=args.base_url, llm_temperature=0,
                                  llm_expansion_timeout=args.timeout, llm_check_timeout=args.timeout,
                                  llm_answerability_check=not args.no_check, llm_query_expansion=not args.no_expansion))
    llm.index, llm.embedder, llm.retriever = offline.index, offline.embedder, offline.retriever
    llm.answerer = llm.extractive  # quotes: the LLM only searches and checks

    rows = question_sets(args.sets.split(","), args.every, near_misses=not args.no_check,
                         batches=[int(b) for b in args.batches.split(",")])
    out = ROOT / "bench" / "results" / f"expansion-{args.label}.json"
    started = time.perf_counter()
    for i, row in enumerate(rows, 1):
        row["offline"], row["llm"] = run(offline, row), run(llm, row)
        gold = row.pop("gold")
        seen = "" if row["set"].endswith("-test") else f" {row['llm']['expanded_queries']} {row['llm']['check']}"
        print(f"[{i}/{len(rows)} {time.perf_counter() - started:.0f}s] {row['id']} "
              f"hit {row['offline']['hit5']}→{row['llm']['hit5']} refused {row['offline']['refused']}→"
              f"{row['llm']['refused']}{seen}", flush=True)  # the test half is counted, never read
        row["gold"] = gold
        done = [{k: v for k, v in r.items() if k != "gold"} for r in rows[:i]]
        summary = {"model": llm.translator.backend.model if llm.translator else None, "base_url": args.base_url,
                   "timeout_s": args.timeout, "every": args.every, "questions": f"{i}/{len(rows)}",
                   "translate_prompt": load_prompt("translate").user, **summarise(done)}
        out.write_text(json.dumps({"summary": summary, "rows": done}, ensure_ascii=False, indent=1) + "\n",
                       encoding="utf-8")  # after every question: a long run stopped early still counts
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
