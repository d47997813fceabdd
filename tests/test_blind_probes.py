"""The blind abstention probes (eval/blind_probes/) are usable data: unique ids, both languages,
and every answerable probe's evidence is a verbatim quote of its source file."""

from __future__ import annotations

from eval.blind_probe import load_probes
from rag.settings import BUNDLED_CORPUS


def test_blind_probes_are_valid():
    for name in ("answerable.jsonl", "unanswerable.jsonl"):
        rows = load_probes(name)
        assert len({r["id"] for r in rows}) == len(rows)
        assert {r["language"] for r in rows} == {"en", "zh"}
        for row in rows:
            if "evidence" in row:
                assert row["evidence"] in (BUNDLED_CORPUS / row["source"]).read_text(encoding="utf-8"), row["id"]
