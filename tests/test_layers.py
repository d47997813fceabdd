"""The folders tell the data flow, and imports may only follow it: `rag/` never imports an
interface (`ui`, `slackbot`, `eval`), `vectorstore/` never imports `rag`, and inside `rag/` a
step imports only the shared modules and the steps before it
(index ← ingest ← retrieve ← answer; LLM backends are shared), never a later one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STEPS = ["llm", "index", "ingest", "retrieve", "answer"]  # each may import the ones before it
ORCHESTRATORS = {"pipeline", "factory", "cli", "doctor", "__main__"}  # wire every step together


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def place(path: Path) -> str:
    """A step's name, or "shared" for a top-level module of rag/ other than the orchestrators."""
    parts = path.relative_to(ROOT / "rag").parts
    return parts[0] if len(parts) > 1 else ("orchestrator" if path.stem in ORCHESTRATORS else "shared")


def step_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "rag" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in STEPS else ("orchestrator" if parts[1] in ORCHESTRATORS else "shared")


@pytest.mark.parametrize("path", sources("rag"), ids=lambda p: str(p.relative_to(ROOT)))
def test_rag_imports_follow_the_data_flow(path):
    imports = imported_modules(path)
    assert not {m for m in imports if m.split(".")[0] in ("ui", "slackbot", "eval", "bench", "tests")}
    here = place(path)
    if here == "orchestrator":
        return
    allowed = {"shared"} | (set(STEPS[: STEPS.index(here) + 1]) if here in STEPS else set())
    wrong = {m for m in imports if step_of(m) not in (None, *allowed)}
    assert not wrong, f"{here} imports a later step or an orchestrator: {sorted(wrong)}"


@pytest.mark.parametrize("path", sources("vectorstore"), ids=lambda p: str(p.relative_to(ROOT)))
def test_vectorstore_adapters_stand_alone(path):
    assert not {m for m in imported_modules(path) if m.split(".")[0] in ("rag", "ui", "slackbot", "eval")}
