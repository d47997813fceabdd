"""What index-time enrichment (`rag ingest --enrich`) buys retrieval, measured with an instrument model.

The project ships no model; this bench points the `openai` backend at a server you started
(e.g. `python -m llama_cpp.server --model qwen2.5-coder-1.5b-instruct.gguf --port 8714`).
Two copies of the bundled index: the baseline (`--baseline-dir`, never enriched) and the one in
RAG_DATA_DIR, whose enrichments.sqlite this bench fills.

1. Generation: Chinese chunks are enriched in a fixed pseudo-random order (by content key,
   chosen without looking at any question), until `--minutes` run out; each is stored at once,
   so a later run goes on where this one stopped. On a CPU too slow for all 528, the chunks
   done are an unbiased sample.
2. Measurement, offline (enrichment is used at query time without any LLM): `rag ingest`
   attaches what is stored, then every question of batch 6 (dev and test halves, near misses
   included) and of the own set is asked of both indexes; answers are quotes. The test half is
   counted, never printed. Two views, paired (plain → enriched):
   - the sample corpus: every chunk up to the last enriched one in content-key order (a uniform
     sample of the whole corpus, bilingual file included, in which every Chinese chunk was
     enriched, as after a complete `--enrich`); retrieval sees only these chunks, and the
     questions are those whose gold lies in them. Fair to enrichment, in a smaller haystack.
   - the whole corpus with only the sample enriched: hit@5 on all questions and on those whose
     gold is in an enriched chunk, and refusals. Enriched chunks compete there with chunks that
     are not, which favours them (their English windows and their own BM25 list), so this view
     shows what a partial enrichment does to the rest, not what a complete one would buy.

    python bench/bench_enrich.py --baseline-dir DIR [--base-url URL --minutes 60] [--label NAME]

Writes bench/results/enrich-<label>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_expansion import question_sets, run  # noqa: E402
from bench.fresh import load_average, save_results  # noqa: E402
from eval.metrics import percentile  # noqa: E402
from rag.ingest.enrichment import EnrichmentWriter, content_key, enrich, needs_english  # noqa: E402
from rag.factory import build_pipeline  # noqa: E402
from rag.llm.backends import build_backend  # noqa: E402
from rag.prompts import load_prompt  # noqa: E402
from rag.settings import Settings  # noqa: E402


def sample_order(chunks) -> list:
    """Every chunk that enrichment is for, in a fixed order that no question influenced: any prefix
    of it is an unbiased sample."""
    return sorted((c for c in chunks if needs_english(c)), key=content_key)


def sample_corpus(chunks) -> set[str]:
    """Content keys of every chunk up to the last enriched one in content-key order (the order
    generation follows): a uniform sample of all chunks in which every Chinese one was enriched
    (or failed)."""
    chunks = list(chunks)
    cutoff = max(content_key(c) for c in chunks if c.gist or c.questions)
    return {content_key(c) for c in chunks if content_key(c) <= cutoff}


@contextmanager
def only(pipes, keys: set[str]):
    """Retrieval (dense, lexical, every list) sees only the chunks with these content keys."""
    for pipe in pipes:
        inside = {c.id for c in pipe.index.chunks.values() if content_key(c) in keys}
        narrow = pipe.retriever._allowed  # the class's own filter (speaker, document)

        def allowed(plan, inside=inside, narrow=narrow):
            also = narrow(plan)
            return lambda c: c.id in inside and (also is None or also(c))

        pipe.retriever._allowed = allowed
    try:
        yield
    finally:
        for pipe in pipes:
            del pipe.retriever._allowed


def generate(pipe, base_url: str, minutes: float, timeout: float) -> dict:
    """Enrich chunks in `sample_order` until the time is up; the seconds each call took."""
    settings = Settings(llm="openai", llm_base_url=base_url, llm_temperature=0, llm_timeout=timeout,
                        llm_max_retries=0)
    writer = EnrichmentWriter(build_backend(settings), timeout)
    store = pipe.index.enrichments
    order = sample_order(pipe.index.chunks.values())
    deadline = time.monotonic() + minutes * 60
    seconds, failed = [], 0
    for i, chunk in enumerate(order, 1):
        if time.monotonic() > deadline:
            break
        if store.get([content_key(chunk)]):
            continue
        started = time.perf_counter()
        _, report = enrich([chunk], store, writer, show_progress=False)
        seconds.append(round(time.perf_counter() - started, 1))
        failed += report.failed
        print(f"[{i}/{len(order)}] {seconds[-1]} s {'failed' if report.failed else 'written'}", flush=True)
    return {"model": writer.backend.model, "base_url": base_url, "timeout_s": timeout, "calls": len(seconds),
            "failed": failed, "call_s_p50": percentile(seconds, 50), "call_s_p95": percentile(seconds, 95),
            "load_average_after": load_average()}


def paired(rows: list[dict], plain: str, enriched: str) -> dict:
    """hit@5 counts before and after, and what moved; hit@1 and MRR@5 too (the sample corpus is
    small enough for hit@5 to saturate)."""
    def mrr(mode: str) -> float:
        return round(sum(1 / r[mode]["gold_rank"] for r in rows if r[mode]["gold_rank"]) / max(1, len(rows)), 3)

    return {"n": len(rows), "plain": sum(r[plain]["hit5"] for r in rows), "enriched": sum(r[enriched]["hit5"] for r in rows),
            "hit1_plain": sum(r[plain]["gold_rank"] == 1 for r in rows),
            "hit1_enriched": sum(r[enriched]["gold_rank"] == 1 for r in rows),
            "mrr5_plain": mrr(plain), "mrr5_enriched": mrr(enriched),
            "gained": sum(r[enriched]["hit5"] and not r[plain]["hit5"] for r in rows),
            "lost": sum(r[plain]["hit5"] and not r[enriched]["hit5"] for r in rows),
            "english": sum(r["language"] == "en" for r in rows),
            "english_plain": sum(r[plain]["hit5"] for r in rows if r["language"] == "en"),
            "english_enriched": sum(r[enriched]["hit5"] for r in rows if r["language"] == "en")}


def summarise(rows: list[dict]) -> dict:
    out = {}
    for name in sorted({r["set"] for r in rows}):
        mine = [r for r in rows if r["set"] == name]
        answerable = [r for r in mine if r["answerable"]]
        entry = {"sample_corpus": paired([r for r in answerable if r["gold_in_sample"]], "plain_sample", "enriched_sample"),
                 "gold_enriched": paired([r for r in answerable if r["gold_enriched"]], "plain", "enriched"),
                 "all": paired(answerable, "plain", "enriched")}
        near = [r for r in mine if not r["answerable"]]
        entry["refused"] = {mode: {"answerable": sum(r[mode]["refused"] for r in answerable),
                                   "near_misses": sum(r[mode]["refused"] for r in near)} for mode in ("plain", "enriched")}
        entry["near_misses"] = len(near)
        out[name] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-dir", type=Path, required=True, help="a data dir with the bundled index, never enriched")
    parser.add_argument("--base-url", help="OpenAI-compatible server; without it, only what is stored is measured")
    parser.add_argument("--minutes", type=float, default=60.0, help="time for generation")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="per chunk, s (generous: a slow CPU measures the model, not the timeout)")
    parser.add_argument("--label", default="run")
    args = parser.parse_args()
    out = ROOT / "bench" / "results" / f"enrich-{args.label}.json"

    baseline = build_pipeline(Settings(llm="extractive", data_dir=args.baseline_dir))
    baseline.ensure_ingested()
    pipe = build_pipeline(Settings(llm="extractive"))
    pipe.embedder = pipe.retriever.embedder = baseline.embedder  # one e5 in memory
    pipe.ensure_ingested()
    assert not any(c.gist or c.questions for c in baseline.index.chunks.values()), "the baseline must not be enriched"
    results = {"prompt": load_prompt("enrich").system, "load_average_before": load_average()}
    if out.exists() and not args.base_url:  # measuring again: keep what the generating run recorded
        results.update({k: v for k, v in json.loads(out.read_text()).items() if k == "generation"})
    if args.base_url:
        results["generation"] = generate(pipe, args.base_url, args.minutes, args.timeout)
        save_results(out, results)  # a measurement that fails later keeps the generation's figures

    started = time.perf_counter()
    report = pipe.ingest(show_progress=False)  # attaches what is stored; no LLM
    enriched = [c for c in pipe.index.chunks.values() if c.gist or c.questions]
    sample = sample_corpus(pipe.index.chunks.values())
    in_sample = [c for c in pipe.index.chunks.values() if content_key(c) in sample]
    results["index"] = {"chunks": len(pipe.index.chunks), "chinese_chunks": len(sample_order(pipe.index.chunks.values())),
                        "enriched": len(enriched), "sample_corpus_chunks": len(in_sample),
                        "sample_corpus_chinese": len(sample_order(in_sample)),
                        "ingest_s": round(time.perf_counter() - started, 1), "ingest": report.summary()}
    rows = question_sets(["blind-dev", "blind-test", "own"], every=1, near_misses=True)
    for row in rows:
        gold = row.pop("gold")
        row["gold_enriched"] = bool(gold) and any(gold(c) for c in enriched)
        row["gold_in_sample"] = bool(gold) and any(gold(c) for c in in_sample)
        row["plain"], row["enriched"] = run(baseline, {**row, "gold": gold}), run(pipe, {**row, "gold": gold})
        if row["gold_in_sample"]:
            with only([baseline, pipe], sample):
                row["plain_sample"], row["enriched_sample"] = run(baseline, {**row, "gold": gold}), run(pipe, {**row, "gold": gold})
        if row["set"] != "blind-test":  # the test half is counted, never read
            moved = [f"{mode or 'whole'} rank {row[f'plain{mode}']['gold_rank']} -> {row[f'enriched{mode}']['gold_rank']}"
                     for mode in ("", "_sample") if f"plain{mode}" in row
                     and row[f"plain{mode}"]["gold_rank"] != row[f"enriched{mode}"]["gold_rank"]]
            if moved:
                print(f"{row['id']} hit {', '.join(moved)}: {row['question']}")
    for row in rows:
        for mode in ("plain", "enriched", "plain_sample", "enriched_sample"):
            if mode in row:
                row[mode] = {k: row[mode][k] for k in ("hit5", "gold_rank", "refused")}
    results["summary"] = summarise(rows)
    results["rows"] = rows
    results["enrichments"] = [{"source": c.source, "char_start": c.char_start, "gist": c.gist,
                               "questions": list(c.questions)} for c in sorted(enriched, key=lambda c: (c.source, c.char_start))]
    save_results(out, results)
    print(json.dumps({k: results[k] for k in ("index", "summary") if k in results}, ensure_ascii=False, indent=1))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
