"""Load run of the web chat: N concurrent `/chat` calls through gradio_client, per concurrency limit.

Starts `rag serve` on 127.0.0.1 (a free port) once per limit, with RAG_WEB_CONCURRENCY set, fires
`--clients` chats at once (each its own gradio_client, questions in English and Chinese), and
reports latency p50/p95, wall time and errors. Bounded: local only, a fixed number of requests.

    RAG_DATA_DIR=... python -m bench.bench_web --limits 2 --clients 50   # the issue-12 load run

Besides the table, writes `bench/results/web.json` (per limit: latencies, errors, load average).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from bench.fresh import save_results

QUESTIONS = [
    "What did Askell say about sycophancy?",
    "克里斯·欧拉如何看待神经网络之美？",
    "What does Dario Amodei think about the race to the top?",
    "阿莫迪怎么看监管？",
    "What is mechanistic interpretability?",
    "What is the capital of Peru?",
    "What did Dario Amodei say about RLHF?",
    "阿曼达如何看待 Claude 的性格？",
]
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(env: dict[str, str] | None = None, timeout: float = 300):
    """`rag serve` in its own process on a free local port, yielding its URL once the page is up
    and the index ready (it says "Chat running" and "Index ready" on stderr, in either order);
    stopped when the block ends. The tests use it too."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    server = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(timeout, server.kill)
    watchdog.start()
    log: list[str] = []
    waiting = {"Chat running", "Index "}  # "Index ready" or "Index not usable"
    try:
        for line in server.stderr:
            log.append(line)
            waiting -= {prefix for prefix in waiting if line.startswith(prefix)}
            if not waiting or line.startswith("Index not usable"):
                break
        watchdog.cancel()
        if server.poll() is not None or not any(line.startswith("Index ready") for line in log):
            raise RuntimeError(f"rag serve did not get ready in {timeout:.0f} s:\n{''.join(log)[-3000:]}")
        threading.Thread(target=server.stderr.read, daemon=True).start()  # keep draining: a full pipe blocks the server
        yield f"http://127.0.0.1:{port}/"
    finally:
        watchdog.cancel()
        server.terminate()
        server.wait(timeout=30)


def one_chat(url: str, question: str) -> tuple[float, str | None]:
    from gradio_client import Client

    client = Client(url, verbose=False)
    started = time.perf_counter()
    try:
        answer = client.predict(question, api_name="/chat")
        error = None if answer.get("answer") else "empty answer"
    except Exception as exc:  # counted, reported, never hidden
        error = f"{type(exc).__name__}: {exc}"
    return time.perf_counter() - started, error


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(limit: int, clients: int) -> dict:
    with served({"RAG_WEB_CONCURRENCY": str(limit)}) as url:
        one_chat(url, QUESTIONS[0])  # warm: lazily built index views and the citation check
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(lambda i: one_chat(url, QUESTIONS[i % len(QUESTIONS)]), range(clients)))
        wall = time.perf_counter() - started
    latencies = [t for t, _ in results]
    errors = [e for _, e in results if e]
    return {"limit": limit, "clients": clients, "p50": statistics.median(latencies), "p95": percentile(latencies, 95),
            "wall": wall, "errors": errors, "latencies": latencies, "load_average": os.getloadavg()[:2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", default="1,2,4", help="Concurrency limits to compare (comma-separated).")
    parser.add_argument("--clients", type=int, default=50, help="Chats fired at once.")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "web.json")
    args = parser.parse_args()
    runs = []
    print(f"{'limit':>5} {'chats':>5} {'p50 s':>7} {'p95 s':>7} {'wall s':>7} {'errors':>6}")
    failed = False
    for limit in (int(x) for x in args.limits.split(",")):
        r = run(limit, args.clients)
        runs.append(r)
        print(f"{r['limit']:>5} {r['clients']:>5} {r['p50']:>7.2f} {r['p95']:>7.2f} {r['wall']:>7.2f} {len(r['errors']):>6}",
              flush=True)
        for error in r["errors"][:3]:
            print(f"      {error}")
        failed |= bool(r["errors"])
    save_results(args.json, {"runs": runs})
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
