"""Run one measurement in a new Python process: cold imports, and a peak RSS that is its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CALL = """
import json, resource, sys
sys.path.insert(0, {root!r})
from {module} import {function} as measure
result = measure(**json.loads(sys.argv[1]))
result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps(result))
"""


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus `extra`, with this checkout first on the import path."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, **(extra or {}), "PYTHONPATH": path}


def in_fresh_process(target: str, env: dict[str, str] | None = None, **kwargs) -> dict:
    """`module:function(**kwargs)` in a new process (the function returns a JSON-able dict), plus its peak RSS."""
    module, function = target.split(":")
    code = _CALL.format(root=str(ROOT), module=module, function=function)
    done = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], env=environment(env), check=False,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{target} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed_in_fresh_process(target: str, env: dict[str, str] | None = None, **kwargs) -> tuple[float, dict]:
    """Wall seconds of `in_fresh_process` seen from outside (interpreter start-up included), and its result."""
    started = time.perf_counter()
    result = in_fresh_process(target, env, **kwargs)
    return time.perf_counter() - started, result


def save_results(path: Path, results: dict) -> None:
    """Every bench's JSON in `bench/results/` (or where `--json` says), its folder made if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (`uptime`): benchmarks on a shared machine say how loaded it was."""
    return [round(x, 2) for x in os.getloadavg()]


def converted_e5() -> Path:
    """The converted e5 model in the configured cache (`RAG_MODEL_CACHE`), converted now if missing,
    so no measured ingest pays for the one-off conversion."""
    from rag.index.e5_convert import converted_model_dir
    from rag.settings import Settings

    return converted_model_dir(Settings().model_cache)
