"""Aggregates, the printed retrieval table, report.md, the plots, and run-to-run comparison."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from .dataset import CROSS_LINGUAL, TYPES
from .metrics import aggregate, latency_summary, mean

SYSTEM_LABELS = {"ours": "ours", "baseline": "baseline"}
LOWER_IS_BETTER = {"false_abstention"}
STAGES = ("retrieval", "generation", "total")


def quality_metrics(k: int, answers: bool = True) -> list[str]:
    names = ["hit@1"] + ([f"hit@{k}"] if k != 1 else []) + ["mrr@10"]
    if answers:
        names += ["citation_precision", "citation_recall", "faithfulness", "key_fact_coverage",
                  "answer_similarity", "abstention", "false_abstention"]
    return names


def latency_metrics() -> list[str]:
    return [f"{stage}_ms_{p}" for stage in STAGES for p in ("p50", "p95")]


def threshold_names(k: int) -> list[str]:
    return quality_metrics(k) + latency_metrics()


LABELS = {
    "hit@1": "Retrieval hit@1", "mrr@10": "Retrieval MRR@10",
    "citation_precision": "Citation precision", "citation_recall": "Citation recall",
    "faithfulness": "Faithfulness", "key_fact_coverage": "Key-fact coverage",
    "answer_similarity": "Similarity to reference (cosine)",
    "abstention": "Abstention accuracy (unanswerable)", "false_abstention": "False-abstention rate (answerable) ↓",
}


def label(metric: str) -> str:
    if metric.startswith("hit@") and metric not in LABELS:
        return f"Retrieval {metric}"
    return LABELS.get(metric, metric)


# ---------------------------------------------------------------------------- aggregation

def group_specs(records: list[dict]) -> list[tuple[str, str, Callable[[dict], bool]]]:
    specs: list[tuple[str, str, Callable[[dict], bool]]] = [("overall", "all", lambda r: True)]
    for lang in ("en", "zh"):
        if any(r["language"] == lang for r in records):
            specs.append(("language", lang, lambda r, v=lang: r["language"] == v))
    if any(r.get("cross_lingual") for r in records):
        specs.append(("language", CROSS_LINGUAL, lambda r: bool(r.get("cross_lingual"))))
    for t in TYPES:
        if any(r["type"] == t for r in records):
            specs.append(("type", t, lambda r, v=t: r["type"] == v))
    speakers = sorted({r["expected_speaker"] or "(none)" for r in records}, key=lambda s: (s == "(none)", s))
    for s in speakers:
        specs.append(("speaker", s, lambda r, v=s: (r["expected_speaker"] or "(none)") == v))
    return specs


def aggregate_records(records: list[dict], k: int, answers: bool = True) -> dict:
    """{system: {kind: {group: {"n": questions, "metrics": {m: {value, n}}, "latency": …}}}}"""
    systems = list(records[0]["systems"]) if records else []
    names = quality_metrics(k, answers)
    out: dict = {}
    for system in systems:
        out[system] = {}
        for kind, name, pred in group_specs(records):
            chosen = [r for r in records if pred(r)]
            recs = [r["systems"][system] for r in chosen]
            metrics = {m: a.to_json() for m, a in aggregate([x["scores"] for x in recs], names).items()}
            for flag, pick in (("answerable_low_confidence", True), ("unanswerable_low_confidence", False)):
                vals = [x["scores"].get("low_confidence") for x, r in zip(recs, chosen) if r["answerable"] == pick]
                vals = [v for v in vals if v is not None]
                metrics[flag] = {"value": None if not vals else round(sum(vals) / len(vals), 4), "n": len(vals),
                                 "count": int(sum(vals))}
            latency = {stage: latency_summary([(x.get("timings_ms") or {}).get(stage) for x in recs])
                       for stage in STAGES}
            tokens = [x.get("tokens") for x in recs if x.get("tokens") is not None]
            out[system].setdefault(kind, {})[name] = {
                "n": len(chosen), "metrics": metrics, "latency": latency,
                "tokens": sum(tokens) if tokens else None,
                "errors": sum(1 for x in recs if x.get("error")),
            }
    return out


def headline(aggregates: dict, system: str) -> dict[str, float | None]:
    """Flat overall values, the names `--min/--max` use."""
    group = aggregates[system]["overall"]["all"]
    flat = {m: v["value"] for m, v in group["metrics"].items()}
    for stage, summary in group["latency"].items():
        for p in ("p50", "p95"):
            flat[f"{stage}_ms_{p}"] = summary[p]
    return flat


# ---------------------------------------------------------------------------- formatting

def fmt(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def fmt_ms(value) -> str:
    return "–" if value is None else (f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms")


def run_folder_name(settings, k: int, when: datetime | None = None) -> str:
    when = when or datetime.now()
    embedder = "e5" if settings.embedder == "e5" else Path(settings.embedding_model or "st").name
    return f"{when:%Y%m%d-%H%M}_{settings.llm}_{embedder}_k{k}"


def unique_folder(root: Path, name: str) -> Path:
    path, n = root / name, 2
    while path.exists():
        path, n = root / f"{name}-{n}", n + 1
    return path


def retrieval_table(aggregates: dict, k: int, min_confidence: float) -> str:
    """The text table `rag eval retrieval` prints."""
    systems = list(aggregates)
    metrics = quality_metrics(k, answers=False)
    sub = "  ".join(f"{SYSTEM_LABELS.get(s, s)[:8]:>8}" for s in systems)
    width = 10 * len(systems)
    head1 = f"{'group':<26}{'n':>4}  " + "".join(f"{m:^{width}}" for m in metrics)
    head2 = f"{'':<26}{'':>4}  " + "".join(f"{sub:^{width}}" for _ in metrics)
    lines = [head1, head2, "-" * len(head1)]
    first = aggregates[systems[0]]
    for kind in ("overall", "language", "type"):
        if kind != "overall":
            lines.append(kind)
        for name, group in first.get(kind, {}).items():
            n = group["metrics"][metrics[0]]["n"]
            if kind == "type" and n == 0:
                continue  # unanswerable: no hit/MRR
            cells = []
            for m in metrics:
                vals = "  ".join(f"{fmt(aggregates[s][kind][name]['metrics'][m]['value']):>8}" for s in systems)
                cells.append(f"{vals:^{width}}")
            indent = "" if kind == "overall" else "  "
            lines.append(f"{indent + name:<26}{n:>4}  " + "".join(cells))
    lines.append("")
    lines.append(f"Abstention signal: SearchResult.confidence below min_confidence = {min_confidence:g}")
    for flag, text in (("unanswerable_low_confidence", "unanswerable below (would abstain, good)"),
                       ("answerable_low_confidence", "answerable below (false abstentions)")):
        cells = []
        for s in systems:
            m = aggregates[s]["overall"]["all"]["metrics"][flag]
            cells.append(f"{SYSTEM_LABELS.get(s, s)} {m['count']}/{m['n']} ({fmt(m['value'], 2)})")
        lines.append(f"  {text:<44}" + "   ".join(cells))
    return "\n".join(lines)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _cell(aggregates: dict, systems: list[str], kind: str, name: str, metric: str) -> str:
    vals = [aggregates[s][kind][name]["metrics"][metric]["value"] for s in systems]
    if all(v is None for v in vals):
        return "–"
    return " / ".join(fmt(v) for v in vals)


def question_badness(rec: dict, system: str, k: int) -> tuple[float, list[str]]:
    """A 0..1 quality score for ranking the worst questions, and what went wrong."""
    sys = rec["systems"][system]
    s = sys["scores"]
    problems = []
    if sys.get("error"):
        problems.append(f"error: {sys['error']}")
    if rec["answerable"]:
        parts = [s.get(f"hit@{k}"), s.get("mrr@10"), s.get("citation_recall"), s.get("key_fact_coverage"),
                 s.get("faithfulness"), None if s.get("false_abstention") is None else 1 - s["false_abstention"]]
        first, deep = sys.get("first_hit"), sys.get("first_hit_deep")
        if s.get(f"hit@{k}") == 0:
            problems.append(f"no gold in top {k}" + (f" (first at rank {deep} of 10)" if deep else " nor in top 10"))
        elif first and first > 1:
            problems.append(f"gold first at rank {first}")
        if s.get("false_abstention") == 1:
            problems.append(f"abstained (confidence {fmt(sys.get('confidence'), 2)})")
        elif s.get("citation_recall") == 0:
            problems.append("gold not cited")
        if s.get("citation_precision") is not None and s["citation_precision"] < 1:
            wrong = sum(1 for c in sys.get("citations", []) if not c["correct"])
            problems.append(f"{wrong} of {len(sys.get('citations', []))} citations neither gold nor supporting")
        missed = [f["fact"] for f in sys.get("key_facts", []) if not f["supported"]]
        if missed and s.get("false_abstention") != 1:
            problems.append("key facts missed: " + "; ".join(missed))
        if s.get("faithfulness") is not None and s["faithfulness"] < 1:
            bad = sum(1 for c in sys.get("claims", []) if not c["supported"])
            problems.append(f"{bad} unsupported line(s)")
    else:
        parts = [s.get("abstention")]
        if s.get("abstention") == 0:
            problems.append(f"answered an unanswerable question (confidence {fmt(sys.get('confidence'), 2)})")
    value = mean(parts)
    return (1.0 if value is None else value), problems


def _judge_rule(judge: dict) -> str:
    cal = judge["calibration"]
    lexical = "never" if judge["lexical_threshold"] is None else f"≥ {judge['lexical_threshold']:.2f}"
    semantic = ("never (on the labelled pairs it added no accuracy over the lexical test)"
                if judge["semantic_threshold"] is None else f"≥ {judge['semantic_threshold']:.3f}")
    return (f": supported when bridged lexical containment {lexical} or contrastive embedding similarity "
            f"{semantic}; calibrated on {cal['n']} labelled pairs ({cal['positives']} supported): accuracy "
            f"{cal['accuracy']:.2f}, balanced {cal['balanced_accuracy']:.2f}, leave-one-out {cal['loo_accuracy']:.2f}")


def write_report(folder: Path, meta: dict, aggregates: dict, records: list[dict], k: int) -> Path:
    systems = list(aggregates)
    names = quality_metrics(k)
    sys_head = " / ".join(SYSTEM_LABELS.get(s, s) for s in systems)
    lines = [f"# Eval run {meta['run']}", ""]
    lines += [
        f"- When: {meta['started']} · {meta['questions_evaluated']} of {meta['questions_total']} questions "
        f"({meta['answerable']} answerable, {meta['unanswerable']} unanswerable) from `{meta['questions_file']}`"
        + (f" · filters: {', '.join(meta['filters'])}" if meta["filters"] else "")
        + (f" · split: {meta['split']}" if meta["split"] != "all" else "")
        + (f" · limit: {meta['limit']}" if meta["limit"] else ""),
        f"- Ours: answerer `{meta['config']['answerer']}`, embedder `{meta['config']['embedder_name']}`, "
        f"k={k}, chunk_tokens={meta['config']['chunk_tokens']}, candidates={meta['config']['candidates']}, "
        f"reranker={meta['config']['reranker_model'] or 'off'}, min_confidence={meta['config']['min_confidence']}",
    ]
    if "baseline" in systems:
        lines.append(f"- Baseline: {meta['baseline']['description']} ({meta['baseline']['chunks']} chunks, index "
                     f"`{meta['baseline']['directory']}`)")
    judge = meta["judge"]
    lines.append(f"- Judge: `{judge['name']}`" + (_judge_rule(judge) if "calibration" in judge else ""))
    errors = {s: aggregates[s]["overall"]["all"]["errors"] for s in systems}
    if any(errors.values()):
        lines.append("- **Errors**: " + ", ".join(f"{s}: {n}" for s, n in errors.items()) + " (see results.json)")
    lines += ["", "## Headline", ""]
    rows = []
    for m in names:
        vals = [aggregates[s]["overall"]["all"]["metrics"][m] for s in systems]
        row = [label(m)] + [fmt(v["value"]) for v in vals]
        if len(systems) == 2:
            a, b = vals[0]["value"], vals[1]["value"]
            row.append("–" if a is None or b is None else f"{a - b:+.3f}")
        row.append(str(vals[0]["n"]))
        rows.append(row)
    for stage in STAGES:
        for p in ("p50", "p95"):
            vals = [aggregates[s]["overall"]["all"]["latency"][stage][p] for s in systems]
            row = [f"Latency {stage} {p}"] + [fmt_ms(v) for v in vals]
            if len(systems) == 2:
                row.append("")
            row.append(str(aggregates[systems[0]]["overall"]["all"]["latency"][stage]["n"]))
            rows.append(row)
    tokens = [aggregates[s]["overall"]["all"]["tokens"] for s in systems]
    rows.append(["Tokens"] + [("n/a" if t is None else str(t)) for t in tokens] + ([""] if len(systems) == 2 else []) + [""])
    header = ["metric"] + [SYSTEM_LABELS.get(s, s) for s in systems] + (["Δ"] if len(systems) == 2 else []) + ["n"]
    lines.append(_md_table(header, rows))
    lines += ["", "Ratios in [0, 1], higher is better except the false-abstention rate. `n` = questions the metric "
              "applies to. Tokens: n/a, the backend reports none.", ""]
    lines.append("![headline](headline.png)")

    titles = {"language": "By language", "type": "By question type", "speaker": "By expected speaker"}
    for kind in ("language", "type", "speaker"):
        groups = aggregates[systems[0]].get(kind, {})
        if not groups:
            continue
        lines += ["", f"## {titles[kind]}", "", f"Cells: {sys_head}." if len(systems) > 1 else "", ""]
        header = [kind, "n"] + [m for m in names]
        rows = [[name, str(g["n"])] + [_cell(aggregates, systems, kind, name, m) for m in names]
                for name, g in groups.items()]
        lines.append(_md_table(header, rows))
        if kind == "language":
            lines += ["", f"`{CROSS_LINGUAL}`: English questions whose gold quotes are all in Chinese-only files.",
                      "", "![by language](metrics_by_language.png)"]
        if kind == "type":
            lines += ["", "![by type](metrics_by_type.png)"]

    lines += ["", "## Latency", "", "![latency](latency.png)", ""]
    lat_rows = []
    for s in systems:
        lat = aggregates[s]["overall"]["all"]["latency"]
        lat_rows.append([SYSTEM_LABELS.get(s, s)] + [f"{fmt_ms(lat[st]['p50'])} / {fmt_ms(lat[st]['p95'])}" for st in STAGES])
    lines.append(_md_table(["system"] + [f"{st} p50 / p95" for st in STAGES], lat_rows))

    lines += ["", "## Abstention signal", ""]
    ab_rows = []
    for s in systems:
        m = aggregates[s]["overall"]["all"]["metrics"]
        u, a = m["unanswerable_low_confidence"], m["answerable_low_confidence"]
        ab_rows.append([SYSTEM_LABELS.get(s, s), f"{u['count']}/{u['n']}", f"{a['count']}/{a['n']}"])
    lines.append(_md_table(["system", "unanswerable with confidence < min", "answerable with confidence < min"], ab_rows))

    lines += ["", "## Worst questions (ours)", ""]
    ranked = sorted(records, key=lambda r: question_badness(r, systems[0], k)[0])
    worst = [(r, *question_badness(r, systems[0], k)) for r in ranked[:12]]
    worst = [w for w in worst if w[1] < 1.0]
    if not worst:
        lines.append("None: every question scored perfectly.")
    for r, value, problems in worst:
        sys = r["systems"][systems[0]]
        lines.append(f"### {r['id']} · {r['language']} · {r['type']} · score {value:.2f}")
        lines.append("")
        lines.append(f"**Q:** {r['question']}")
        lines.append("")
        lines.append("- Problems: " + ("; ".join(problems) or "partial scores"))
        gold_sources = sorted({g['source'] for g in r['gold']})
        if gold_sources:
            lines.append(f"- Gold in: {', '.join(gold_sources)}; top {k}: "
                         + ", ".join(f"{p['source'][:3]}[{p['char_start']}:{p['char_end']}]{'✓' if p['gold'] else ''}"
                                     for p in sys.get("passages", [])))
        if sys.get("answer"):
            text = sys["answer"]["text"].replace("\n", " ⏎ ")
            lines.append(f"- Answer: {text[:400]}{'…' if len(text) > 400 else ''}")
        if r["reference_answer"]:
            lines.append(f"- Reference: {r['reference_answer'][:300]}")
        lines.append("")

    lines += ["## Files", "", "- `results.json`: every question with each system's passages, answer, citations, "
              "claims, key facts, scores and timings.",
              "- `headline.png`, `metrics_by_language.png`, `metrics_by_type.png`, `latency.png`.", ""]
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- plots

COLORS = {"ours": "#1f6fb4", "baseline": "#b8b8b8"}


def _bars(ax, groups: list[str], systems: list[str], values: dict[str, list[float | None]], title: str,
          rotate: bool | None = None) -> None:
    import numpy as np

    width = 0.8 / max(1, len(systems))
    x = np.arange(len(groups))
    for i, s in enumerate(systems):
        vals = values[s]
        heights = [0 if v is None else v for v in vals]
        bars = ax.bar(x + (i - (len(systems) - 1) / 2) * width, heights, width, label=SYSTEM_LABELS.get(s, s),
                      color=COLORS.get(s, None), edgecolor="white")
        for bar, v in zip(bars, vals):
            ax.text(bar.get_x() + bar.get_width() / 2, (v or 0) + 0.02, "n/a" if v is None else f"{v:.2f}",
                    ha="center", va="bottom", fontsize=7,
                    rotation=90 if (rotate if rotate is not None else len(groups) * len(systems) > 8) else 0)
    ax.set_title(title, fontsize=10)
    ax.set_xticks(x)
    ax.set_xticklabels(groups, fontsize=8, rotation=20 if max(len(g) for g in groups) > 8 else 0, ha="right"
                       if max(len(g) for g in groups) > 8 else "center")
    ax.set_ylim(0, 1.25)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _grid(aggregates: dict, kind: str, metrics: list[str], title: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    systems = list(aggregates)
    groups = list(aggregates[systems[0]].get(kind, {}))
    if kind == "type" and "unanswerable" in groups:
        groups = [g for g in groups if g != "unanswerable"]
        metrics = [m for m in metrics if m != "abstention"]
    cols = 3
    rows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.3 * rows), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        values = {s: [aggregates[s][kind][g]["metrics"][m]["value"] for g in groups] for s in systems}
        _bars(ax, groups, systems, values, label(m))
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles, labels_ = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels_, loc="upper right", ncol=len(systems), frameon=False)
    fig.suptitle(title, x=0.01, ha="left", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _headline_plot(aggregates: dict, metrics: list[str], path: Path) -> None:
    import textwrap

    import matplotlib.pyplot as plt

    systems = list(aggregates)
    fig, ax = plt.subplots(figsize=(12, 4.6))
    values = {s: [aggregates[s]["overall"]["all"]["metrics"][m]["value"] for m in metrics] for s in systems}
    names = [textwrap.fill(label(m).replace("Retrieval ", ""), 13, break_long_words=False) for m in metrics]
    _bars(ax, names, systems, values, "All questions: ours vs baseline" if len(systems) > 1 else "All questions",
          rotate=False)
    ax.set_xticklabels(names, rotation=0, ha="center", fontsize=8)
    ax.legend(frameon=False, loc="upper right", ncol=len(systems))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _latency_plot(records: list[dict], systems: list[str], path: Path) -> None:
    import matplotlib.pyplot as plt

    from .metrics import percentile

    fig, axes = plt.subplots(1, len(STAGES), figsize=(13, 3.6), squeeze=False)
    for ax, stage in zip(axes.flat, STAGES):
        data, names, colors = [], [], []
        for s in systems:
            vals = [r["systems"][s].get("timings_ms", {}).get(stage) for r in records]
            vals = [max(v, 0.1) for v in vals if v is not None]  # log scale: under 0.1 ms drawn at 0.1
            if vals:
                data.append(vals)
                names.append(f"{SYSTEM_LABELS.get(s, s)}\np50 {fmt_ms(percentile(vals, 50))}\n"
                             f"p95 {fmt_ms(percentile(vals, 95))}")
                colors.append(COLORS.get(s, "#cccccc"))
        if not data:
            ax.axis("off")
            continue
        parts = ax.boxplot(data, orientation="horizontal", widths=0.5, showfliers=True, patch_artist=True,
                           medianprops={"color": "black"}, flierprops={"markersize": 3, "alpha": 0.6})
        for patch, color in zip(parts["boxes"], colors):
            patch.set_facecolor(color)
        for i, vals in enumerate(data, 1):
            ax.plot([percentile(vals, 95)], [i + 0.33], marker="v", color="#c0392b", markersize=7, zorder=3)
        ax.set_yticks(range(1, len(names) + 1))
        ax.set_yticklabels(names, fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("milliseconds (log scale)")
        ax.set_title(stage, fontsize=10)
        ax.grid(axis="x", alpha=0.3, which="major")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.suptitle("Latency per question (box = p25–p75, line = p50, ▼ = p95, dots = outliers)", x=0.01, ha="left",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(folder: Path, aggregates: dict, records: list[dict], k: int) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    names = quality_metrics(k)
    shown = [m for m in names if m not in ("false_abstention",)]
    paths = [folder / "headline.png", folder / "metrics_by_language.png", folder / "metrics_by_type.png",
             folder / "latency.png"]
    _headline_plot(aggregates, names, paths[0])
    _grid(aggregates, "language", shown, "Metrics by question language", paths[1])
    _grid(aggregates, "type", shown, "Metrics by question type (unanswerable questions count only toward abstention, in the headline)", paths[2])
    _latency_plot(records, list(aggregates), paths[3])
    return paths


# ---------------------------------------------------------------------------- comparison

COMPARED = ("hit@1", "mrr@10", "citation_precision", "citation_recall", "faithfulness", "key_fact_coverage",
            "answer_similarity", "abstention", "false_abstention")
EPSILON = {"answer_similarity": 0.02}


def load_run(path: Path) -> dict:
    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"{path}: no results.json (give a run folder or its results.json)")
    return json.loads(file.read_text(encoding="utf-8"))


def compare_runs(a_path: Path, b_path: Path, system: str = "ours") -> str:
    a, b = load_run(a_path), load_run(b_path)
    ka, kb = a["run"]["k"], b["run"]["k"]
    metrics = [m for m in (["hit@1", f"hit@{ka}"] if ka == kb else ["hit@1"]) + list(COMPARED[1:])]
    metrics = list(dict.fromkeys(metrics))
    qa = {r["id"]: r for r in a["questions"] if system in r["systems"]}
    qb = {r["id"]: r for r in b["questions"] if system in r["systems"]}
    shared = [i for i in qa if i in qb]
    improved, regressed, unchanged = [], [], 0
    for qid in shared:
        sa, sb = qa[qid]["systems"][system]["scores"], qb[qid]["systems"][system]["scores"]
        ups, downs = [], []
        for m in metrics:
            va, vb = sa.get(m), sb.get(m)
            if va is None or vb is None or abs(vb - va) <= EPSILON.get(m, 1e-9):
                continue
            better = (vb < va) if m in LOWER_IS_BETTER else (vb > va)
            (ups if better else downs).append(f"{m} {fmt(va, 2)}→{fmt(vb, 2)}")
        head = f"{qid} [{qa[qid]['language']} {qa[qid]['type']}]"
        if ups:
            improved.append(f"  {head} " + ", ".join(ups) + (f"  (but {', '.join(downs)})" if downs else ""))
        if downs and not ups:
            regressed.append(f"  {head} " + ", ".join(downs))
        elif downs:
            regressed.append(f"  {head} " + ", ".join(downs) + f"  (but {', '.join(ups)})")
        if not ups and not downs:
            unchanged += 1
    lines = [f"Comparing {a['run']['name']} → {b['run']['name']} (system: {system}, {len(shared)} shared questions)", ""]
    lines.append(f"Improved ({len(improved)}):")
    lines += improved or ["  none"]
    lines.append(f"Regressed ({len(regressed)}):")
    lines += regressed or ["  none"]
    lines.append(f"Unchanged: {unchanged}")
    only_a, only_b = [i for i in qa if i not in qb], [i for i in qb if i not in qa]
    if only_a:
        lines.append(f"Only in A: {', '.join(only_a)}")
    if only_b:
        lines.append(f"Only in B: {', '.join(only_b)}")
    lines += ["", "Aggregate over the shared questions:", f"  {'metric':<22}{'A':>8}{'B':>8}{'Δ':>9}"]
    for m in metrics:
        va = mean(qa[i]["systems"][system]["scores"].get(m) for i in shared)
        vb = mean(qb[i]["systems"][system]["scores"].get(m) for i in shared)
        delta = "–" if va is None or vb is None else f"{vb - va:+.3f}"
        lines.append(f"  {m:<22}{fmt(va):>8}{fmt(vb):>8}{delta:>9}")
    if ka != kb:
        lines.append(f"  (k differs: {ka} vs {kb}; hit@k not compared)")
    differs = _setup_differences(a["run"], b["run"])
    if differs:
        lines += ["", "Note: the runs also differ in " + "; ".join(differs) + "."]
    return "\n".join(lines)


def _setup_differences(a: dict, b: dict) -> list[str]:
    """What else changed between two runs, so a delta is not blamed on the wrong thing."""
    out = []
    for key, value in (a.get("config") or {}).items():
        other = (b.get("config") or {}).get(key)
        if key != "data_dir" and "config" in b and value != other:
            out.append(f"{key} {value!r} → {other!r}")
    ja, jb = a.get("judge") or {}, b.get("judge") or {}
    for key in ("name", "lexical_threshold", "semantic_threshold"):
        if ja and jb and ja.get(key) != jb.get(key):
            out.append(f"judge {key} {ja.get(key)} → {jb.get(key)}")
    if a.get("questions_sha256") and b.get("questions_sha256") and a["questions_sha256"] != b["questions_sha256"]:
        out.append("the question file")
    if a.get("git_commit") and b.get("git_commit") and a["git_commit"] != b["git_commit"]:
        out.append(f"commit {a['git_commit']} → {b['git_commit']}")
    return out
