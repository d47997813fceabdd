"""How cost grows with the corpus: synthetic corpora (`synth_corpus.py`) at several sizes.

    python bench/bench_scale.py --scales 1,3,10 [--server] [--composed 100] [--keep DIR]

For each size, each step in a fresh process on its own data folder: a cold ingest with the real
embedder (passages/s, peak RSS; `bench_ingest.worker` without its floor), then start-up (building
the pipeline and the first search, which loads the index) and search p50/p95 over the eval
questions (`bench_retrieval.time_questions`), the index's size on disk, and with `--server` the
same queries through a `chroma run` server over the same folder.

`--composed N` builds the N× index without embedding every passage, which would take hours on
two cores: each passage's vector is the normalised mean of the real e5 vectors of its sentences
(all re-mixed from the bundled corpus, so each distinct sentence is embedded once). Search cost
does not depend on the vectors' values (an exact product over all of them, plus BM25 over the
real text), so query latency, RSS, disk and start-up are measured; its ingest throughput is not
an embedding figure and is reported apart, and the N× embedding time is extrapolated from the
measured sizes. Writes `bench/results/scale.json` and `bench/results/scale.png`.

`--tile-to N` (with `--keep`): when even a composed N× index is out of reach (its Chroma writes
alone take hours on a loaded 2-core machine), time the parts of a search whose cost grows with
the corpus on the largest kept index with its arrays tiled to N× (`size_dependent_search`);
`bench/results/scale_tiled.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_retrieval import stats, time_questions, warmed_pipeline
from bench.fresh import converted_e5, in_fresh_process, load_average
from bench.synth_corpus import read_pool, write_corpus

RESULTS = Path(__file__).parent / "results"


def query_costs(repeat: int) -> dict:
    """Start-up (pipeline built, index loaded by the first search) and search latency, in this process."""
    pipeline, questions, startup = warmed_pipeline()
    search = [ms for _, ms in time_questions(pipeline, questions, repeat)["search"]]
    s = stats(search)
    windows = len(pipeline.index.snapshot.window_rows)
    return {"startup_s": startup, "search_p50_ms": s["p50"], "search_p95_ms": s["p95"],
            "chunks": len(pipeline.index.chunks), "windows": windows}


class ComposedE5:
    """e5 vectors for re-mixed text, composed: the normalised mean of its sentences' real vectors.

    A sentence not in `sentence_vectors` (the synthetic files' punctuation and line breaks cut some
    differently from the bundled ones) is embedded once, by the real embedder, and kept."""

    def __init__(self, embedder, sentence_vectors: dict[str, np.ndarray]):
        self.inner, self.sentence_vectors = embedder, sentence_vectors
        self.name, self.dim = embedder.name, embedder.dim

    def encode_documents(self, texts: list[str], progress=None) -> np.ndarray:
        from rag.text import sentences

        split = [sentences(text) or [text] for text in texts]
        missing = sorted({s for parts in split for s in parts} - self.sentence_vectors.keys())
        if missing:
            self.sentence_vectors.update(zip(missing, self.inner.encode_documents(missing)))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, parts in enumerate(split):
            mean = np.mean([self.sentence_vectors[s] for s in parts], axis=0)
            out[i] = mean / np.linalg.norm(mean)
        if progress:
            progress(len(texts))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self.inner.encode_query(text)


def composed_ingest(sentence_file: str) -> dict:
    """Ingest the configured corpus with `ComposedE5` (sentence vectors read from `sentence_file`)."""
    from rag.factory import build_pipeline

    saved = np.load(sentence_file)
    pipeline = build_pipeline()
    pipeline.embedder = ComposedE5(pipeline.embedder, dict(zip(saved["sentences"].tolist(), saved["vectors"])))
    started = time.perf_counter()
    report = pipeline.ingest(show_progress=False)
    return {"ingest_s": time.perf_counter() - started, "chunks": report.added, "files": len(report.files)}


def embed_pool_sentences(path: str) -> dict:
    """The real e5 vectors of every sentence the synthetic corpora are made of, saved for `composed_ingest`."""
    from rag.factory import build_embedder
    from rag.settings import Settings

    pool = read_pool()
    unique = sorted({*pool.host_sentences, *pool.guest_sentences, *(s for pair in pool.pairs for s in pair)})
    vectors = build_embedder(Settings()).encode_documents(unique)
    np.savez(path, sentences=np.array(unique), vectors=vectors)
    return {"sentences": len(unique)}


def size_dependent_search(factor: int, repeat: int) -> dict:
    """The parts of a search whose cost grows with the corpus, on the configured index and on its
    arrays tiled `factor` times (what an index `factor` times larger holds): the dense scoring
    (chunk and window products, best window per chunk, top-k) and the BM25 scoring (sparse product,
    top-k), over the eval questions. The rest of a search does not depend on the corpus's size."""
    from scipy import sparse
    from threadpoolctl import threadpool_limits

    from rag.index.corpus import best_rows
    from vectorstore.lexical import BM25Index

    pipeline, questions, _ = warmed_pipeline()
    rows = pipeline.index.snapshot
    matrix, owners, windows = rows.vectors, rows.window_rows, rows.windows
    lexical = pipeline.index.lexical
    vectors = [pipeline.embedder.encode_query(q) for q, _ in questions]
    terms = [pipeline.retriever.plan(q).terms for q, _ in questions]
    out = {}
    one_blas_thread = threadpool_limits(1, user_api="blas")  # as `CorpusIndex.nearest` runs them
    for times in (1, factor):
        chunks, all_windows = np.tile(matrix, (times, 1)), np.tile(windows, (times, 1))
        all_owners = np.concatenate([owners + i * len(matrix) for i in range(times)])
        weights = BM25Index(lexical.ids * times, sparse.vstack([lexical.matrix] * times).tocsr(), lexical.vocab,
                            lexical.df)
        dense_ms, lexical_ms = [], []
        for _ in range(repeat):
            for vector, weighted in zip(vectors, terms):
                started = time.perf_counter()
                scores = chunks @ vector
                np.maximum.at(scores, all_owners, all_windows @ vector)
                best_rows(scores, 40)
                dense_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                raw = weights.scores(weighted)
                matched = np.flatnonzero(raw > 0)
                best_rows(raw[matched], 40)
                lexical_ms.append((time.perf_counter() - started) * 1000)
        out[f"x{times}"] = {"chunks": len(chunks), "windows": len(all_windows),
                            "dense_p50_ms": stats(dense_ms)["p50"], "lexical_p50_ms": stats(lexical_ms)["p50"],
                            "arrays_gb": (chunks.nbytes + all_windows.nbytes + weights.matrix.data.nbytes * 2) / 2**30}
    one_blas_thread.unregister()
    return out


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chroma_server(index: Path, port: int) -> subprocess.Popen:
    chroma = Path(sys.executable).with_name("chroma")
    server = subprocess.Popen([str(chroma), "run", "--path", str(index), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2)
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("chroma run did not start")


def cold_ingest(env: dict[str, str], sentence_file: Path | None) -> dict:
    """The ingest figures of one size, from nothing: with the real embedder, or composed vectors."""
    if sentence_file is not None:
        ingest = in_fresh_process("bench.bench_scale:composed_ingest", env, sentence_file=str(sentence_file))
        return {"composed_ingest_s": ingest["ingest_s"], "ingest_rss_gb": ingest["peak_rss_gb"]}
    ingest = in_fresh_process("bench.bench_ingest:worker", env, floor=False)
    # a text met twice (re-mixed sentences repeat) is embedded once: `embedded` ≤ passages
    return {"embedded": ingest["passages"], "ingest_only_s": ingest["ingest_s"],
            "ingest_s": ingest["startup_s"] + ingest["ingest_s"], "embedded_per_s": ingest["passages"] / ingest["ingest_s"],
            "embed_s": ingest["steps_s"]["embed"], "ingest_rss_gb": ingest["peak_rss_gb"],
            "warm_reingest_s": ingest["warm_reingest_s"]}


INGEST_KEYS = ("embedded", "ingest_only_s", "ingest_s", "embedded_per_s", "embed_s", "ingest_rss_gb",
               "warm_reingest_s", "composed_ingest_s", "ingest_load")


def measure_scale(scale: float, scratch: Path, repeat: int, server: bool,
                  sentence_file: Path | None = None, requery: bool = False) -> dict:
    """One row; with `requery`, only the queries, on the index kept in `scratch`, beside the ingest
    figures of the row measured before (for code that changed what a reader does, not the ingest)."""
    corpus = scratch / f"corpus-{scale:g}x"
    files = write_corpus(scale, corpus)
    data = scratch / f"data-{scale:g}x"
    env = {"RAG_DATA_DIR": str(data), "RAG_CORPUS": json.dumps([str(corpus)])}
    row = {"scale": scale, "files": len(files), "megabytes": sum(p.stat().st_size for p in files) / 1e6,
           "vectors": "e5" if sentence_file is None else "composed", "load_before": load_average(),
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    if requery:
        earlier = next(r for r in json.loads((RESULTS / "scale.json").read_text())
                       if (r["scale"], r["vectors"]) == (scale, row["vectors"]))
        row.update({key: earlier[key] for key in INGEST_KEYS if key in earlier}, requeried=True)
        row.setdefault("ingest_load", [earlier["load_before"], earlier["load_after"]])
    else:
        shutil.rmtree(data, ignore_errors=True)  # a cold ingest, even in a kept folder
        print(f"{scale:g}×: ingest…", file=sys.stderr, flush=True)
        row.update(cold_ingest(env, sentence_file), ingest_load=[row["load_before"], load_average()])
    print(f"{scale:g}×: queries…", file=sys.stderr, flush=True)
    queries = in_fresh_process("bench.bench_scale:query_costs", env, repeat=repeat)
    row.update(chunks=queries["chunks"], windows=queries["windows"], startup_s=queries["startup_s"],
               search_p50_ms=queries["search_p50_ms"], search_p95_ms=queries["search_p95_ms"],
               query_rss_gb=queries["peak_rss_gb"], index_mb=disk_bytes(data / "index") / 1e6,
               lexical_mb=disk_bytes(data / "lexical") / 1e6, snapshot_mb=disk_bytes(data / "snapshots") / 1e6,
               embedding_cache_mb=(data / "embeddings.sqlite").stat().st_size / 1e6
               if (data / "embeddings.sqlite").exists() else 0.0)
    row["passages"] = queries["chunks"] + queries["windows"]
    if "ingest_only_s" in row:
        row["passages_per_s"] = row["passages"] / row["ingest_only_s"]
    if server:
        port = free_port()
        process = chroma_server(data / "index", port)
        try:
            served = in_fresh_process("bench.bench_scale:query_costs", {**env, "RAG_CHROMA_HOST": "127.0.0.1",
                                                                         "RAG_CHROMA_PORT": str(port)}, repeat=repeat)
        finally:
            process.terminate()
            process.wait(timeout=30)
        row.update(server_startup_s=served["startup_s"], server_search_p50_ms=served["search_p50_ms"],
                   server_search_p95_ms=served["search_p95_ms"], server_query_rss_gb=served["peak_rss_gb"])
    row["load_after"] = load_average()
    return row


COLUMNS = [  # (key, heading, format)
    ("scale", "corpus", "{:g}×"), ("vectors", "vectors", "{}"), ("files", "files", "{}"), ("passages", "passages", "{:,}"),
    ("passages_per_s", "ingest passages/s", "{:.1f}"), ("embedded_per_s", "… embedded/s", "{:.1f}"),
    ("ingest_rss_gb", "ingest RSS GB", "{:.2f}"),
    ("warm_reingest_s", "warm re-ingest s", "{:.2f}"), ("startup_s", "start-up s", "{:.2f}"),
    ("search_p50_ms", "search p50 ms", "{:.0f}"), ("search_p95_ms", "search p95 ms", "{:.0f}"),
    ("query_rss_gb", "query RSS GB", "{:.2f}"), ("index_mb", "Chroma MB", "{:.0f}"),
    ("lexical_mb", "BM25 MB", "{:.1f}"), ("snapshot_mb", "snapshot MB", "{:.0f}"),
    ("embedding_cache_mb", "embedding cache MB", "{:.0f}"),
    ("server_startup_s", "server: start-up s", "{:.2f}"), ("server_search_p50_ms", "server: p50 ms", "{:.0f}"),
    ("server_search_p95_ms", "server: p95 ms", "{:.0f}"),
]


def scale_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(h for _, h, _ in COLUMNS) + " | load before → after |",
             "|" + "---:|" * (len(COLUMNS) + 1)]
    for row in rows:
        cells = [fmt.format(row[key]) if key in row else "–" for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + f" | {row['load_before'][0]} → {row['load_after'][0]} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    series = [
        (0, "search_p50_ms", "search p50", 1), (0, "search_p95_ms", "search p95", 1),
        (1, "startup_s", "start-up (first search)", 1), (1, "ingest_s", "cold ingest (real e5)", 1),
        (2, "query_rss_gb", "query process RSS", 1), (2, "ingest_rss_gb", "ingest RSS", 1),
        (2, "index_mb", "Chroma on disk", 1e-3),
    ]
    for axis, key, label, unit in series:  # each series where it was measured
        points = [(r["passages"], r[key] * unit) for r in rows if key in r]
        axes[axis].plot(*zip(*points), "o-", label=label)
    tiled_path = path.with_name("scale_tiled.json")
    if tiled_path.exists():  # the size-dependent part of a search, measured up to the tiled size
        sizes = json.loads(tiled_path.read_text())
        points = [(v["chunks"] + v["windows"], v["dense_p50_ms"] + v["lexical_p50_ms"]) for k, v in sizes.items()
                  if k.startswith("x")]
        axes[0].plot(*zip(*points), "s--", label="dense + BM25 scoring alone (tiled arrays)")
    axes[0].set(ylabel="ms", title="query latency")
    axes[1].set(ylabel="s", title="start-up and ingest", yscale="log")
    axes[2].set(ylabel="GB", title="memory and disk")
    for axis in axes:
        axis.set(xlabel="passages (chunks + sentence windows)", xscale="log")
        axis.legend()
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def merged(rows: list[dict], path: Path) -> list[dict]:
    """`rows` written into `path` over the rows of the same sizes and vectors a run left there
    before, so sizes measured by separate runs share one table and plot."""
    key = lambda row: (row["scale"], row["vectors"])
    earlier = json.loads(path.read_text()) if path.exists() else []
    mine = {key(r) for r in rows}
    rows = sorted([r for r in earlier if key(r) not in mine] + rows, key=lambda r: r["passages"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))
    return rows


def run_scales(scales: list[float], server: bool, composed: list[float] = (), repeat: int = 2,
               keep: Path | None = None, requery: bool = False) -> str:
    """Measure each size, saving each row as soon as it is measured; the table and plot of every size saved."""
    scratch_dir = None if keep else tempfile.TemporaryDirectory(prefix="bench-scale-")
    scratch = keep or Path(scratch_dir.name)
    scratch.mkdir(parents=True, exist_ok=True)
    converted_e5()
    sentence_file = scratch / "sentences.npz"
    if composed and not sentence_file.exists():
        print("embedding the sentence pool…", file=sys.stderr, flush=True)
        in_fresh_process("bench.bench_scale:embed_pool_sentences", path=str(sentence_file))
    for scale, vectors in [(s, None) for s in scales] + [(s, sentence_file) for s in composed]:
        rows = merged([measure_scale(scale, scratch, repeat, server, vectors, requery)], RESULTS / "scale.json")
    plot(rows, RESULTS / "scale.png")
    if scratch_dir:
        scratch_dir.cleanup()
    return scale_table(rows)


def tiled(folder: Path, target: float, repeat: int) -> dict:
    """`size_dependent_search` on the largest index kept in `folder`, tiled up to `target`× the bundled corpus."""
    scale = max(float(d.name.removeprefix("data-").removesuffix("x")) for d in folder.glob("data-*x"))
    env = {"RAG_DATA_DIR": str(folder / f"data-{scale:g}x"), "RAG_CORPUS": json.dumps([str(folder / f"corpus-{scale:g}x")])}
    factor = round(target / scale)
    result = in_fresh_process("bench.bench_scale:size_dependent_search", env, factor=factor, repeat=repeat)
    result.update(measured_scale=scale, factor=factor, load=load_average())
    (RESULTS / "scale_tiled.json").write_text(json.dumps(result, indent=2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1,3,10", help="sizes ingested with the real embedder")
    parser.add_argument("--composed", default="", help="sizes built with composed vectors, e.g. 100")
    parser.add_argument("--server", action="store_true", help="also query through a `chroma run` server")
    parser.add_argument("--repeat", type=int, default=2, help="timed passes over the eval questions")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--requery", action="store_true", help="with --keep: measure only the queries again on "
                        "the kept indexes, beside the ingest figures measured before")
    parser.add_argument("--tile-to", type=float, help="then time the size-dependent parts of a search on the "
                        "largest kept index tiled to this size (needs --keep)")
    args = parser.parse_args()
    sizes = lambda text: [float(s) for s in text.split(",") if s]
    if sizes(args.scales) or sizes(args.composed):
        print(run_scales(sizes(args.scales), args.server, sizes(args.composed), args.repeat, args.keep, args.requery))
    if args.tile_to:
        print(json.dumps(tiled(args.keep, args.tile_to, args.repeat), indent=2))


if __name__ == "__main__":
    main()
