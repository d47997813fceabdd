"""`rag eval` (answer quality, with a report folder) and `rag eval retrieval` (a printed table).

Loaded by `rag` through the `rag.commands` entry point; nothing in rag/ imports this package.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import click

from rag.cli import llm_options, llm_overrides, with_options
from rag.errors import UserError

from .dataset import DEFAULT_QUESTIONS, DatasetError, Question, load_questions, parse_filters, select
from .judge import DEFAULT_LABELS, judge_factories
from .report import compare_runs, fmt, fmt_ms, headline, label, quality_metrics, threshold_names

# ---------------------------------------------------------------------------- shared plumbing


def _questions(path: Path, filters: tuple[str, ...], split: str, limit: int | None) -> tuple[list[Question], list[Question]]:
    """Validated questions (all, and the selection); a broken file stops here with exit code 2."""
    try:
        parsed = parse_filters(filters)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        questions = load_questions(path)
    except DatasetError as exc:
        click.echo(f"Error: the question set is invalid; nothing was run.\n{exc}", err=True)
        sys.exit(2)
    chosen = select(questions, parsed, split, limit)
    if not chosen:
        raise click.UsageError(f"no question matches (filters: {', '.join(filters) or 'none'}, split: {split})")
    return questions, chosen


def _pipeline(**overrides):
    from rag import cli as rag_cli

    try:
        return rag_cli.ready_pipeline(**overrides)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc


def _baseline(pipe, show_progress: bool):
    from .baseline import TextbookBaseline

    try:
        return TextbookBaseline(pipe.settings, pipe.embedder, pipe.retriever.plan, show_progress=show_progress)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def _thresholds(specs: tuple[str, ...], option: str, k: int) -> dict[str, float]:
    valid = threshold_names(k)
    out = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        name = name.strip().lower()
        if not sep or name not in valid:
            raise click.UsageError(
                f"{option} {spec!r}: unknown metric {name!r}. Valid metrics: {', '.join(valid)}")
        try:
            out[name] = float(value)
        except ValueError:
            raise click.UsageError(f"{option} {spec!r}: {value!r} is not a number") from None
    return out


def _git_commit() -> str | None:
    """HEAD, marked "-dirty" when the pipeline's code (rag/, vectorstore/, prompts/) has local changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=root).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "rag", "vectorstore", "prompts"],
                               capture_output=True, text=True, timeout=5, cwd=root).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("-dirty" if dirty else "")) or None


def _config(settings, embedder) -> dict:
    return {
        "answerer": settings.llm, "model": settings.llm_model, "embedder": settings.embedder, "embedder_name": getattr(embedder, "name", ""),
        "embedding_model": settings.embedding_model, "chunk_tokens": settings.chunk_tokens,
        "top_k": settings.top_k, "candidates": settings.candidates, "reranker_model": settings.reranker_model,
        "min_confidence": settings.min_confidence, "collection": settings.collection,
        "data_dir": str(settings.data_dir),
    }


filter_option = click.option(
    "--filter", "filters", multiple=True, metavar="KEY=VALUE",
    help="Only matching questions: lang=en|zh, type=…, speaker=… (substring; 'none' = no speaker), "
         "split=…, id=…, answerable=true|false. Repeat to combine; commas give alternatives.")
split_option = click.option("--split", type=click.Choice(["dev", "test", "all"]), default="all", show_default=True,
                            help="Which half of the question set.")
limit_option = click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N selected questions.")
k_option = click.option("--k", "k", type=click.IntRange(1, 50), default=5, show_default=True,
                        help="Passages retrieved and shown to the answerer (hit@k).")
questions_option = click.option("--questions", "questions_path", type=click.Path(path_type=Path),
                                default=DEFAULT_QUESTIONS, show_default=False,
                                help="Question set (default: eval/questions.jsonl).")
quiet_option = click.option("--quiet", is_flag=True, help="No progress bars.")


# ---------------------------------------------------------------------------- rag eval

@click.group("eval", invoke_without_command=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where run folders go (default: <RAG data dir>/eval-runs).")
@limit_option
@filter_option
@split_option
@k_option
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="Also run the textbook LangChain baseline, side by side.")
@click.option("--judge", "judge_name", default="heuristic", show_default=True,
              help="Who decides support/coverage: 'heuristic' or 'llm' (the configured backend).")
@with_options(llm_options)
@click.option("--min", "mins", multiple=True, metavar="METRIC=VALUE",
              help="Exit 1 when our overall METRIC is below VALUE (e.g. hit@5=0.85, abstention=0.8).")
@click.option("--max", "maxs", multiple=True, metavar="METRIC=VALUE",
              help="Exit 1 when our overall METRIC is above VALUE (e.g. false_abstention=0.1, total_ms_p95=2000).")
@click.option("--compare", nargs=2, default=None, metavar="RUN_A RUN_B",
              help="Compare two runs (folders, results.json files, or run names under --out) question by "
                   "question; runs nothing.")
@questions_option
@click.option("--labels", "labels_path", type=click.Path(exists=True, path_type=Path), default=DEFAULT_LABELS,
              show_default=False, help="Labelled pairs the heuristic judge calibrates on.")
@quiet_option
@click.pass_context
def eval_group(ctx: click.Context, out: Path | None, limit: int | None, filters: tuple[str, ...], split: str, k: int,
               baseline: bool, judge_name: str, mins: tuple[str, ...], maxs: tuple[str, ...],
               compare: tuple[Path, Path] | None, questions_path: Path, labels_path: Path, quiet: bool,
               llm: str | None, model: str | None, base_url: str | None) -> None:
    """Answer-quality eval: every question through our pipeline (and the baseline), scored, with a
    report folder (report.md, results.json, plots). Subcommands: `retrieval`, `calibrate`, `feedback`.
    """
    if ctx.invoked_subcommand:
        return
    if compare:
        try:
            click.echo(compare_runs(*(_run_path(name, out) for name in compare)))
        except (ValueError, KeyError, json.JSONDecodeError) as exc:
            raise click.ClickException(f"cannot compare: {exc}") from exc
        return
    minimum, maximum = _thresholds(mins, "--min", k), _thresholds(maxs, "--max", k)
    if judge_name not in judge_factories():
        raise click.UsageError(f"unknown judge {judge_name!r}; available: {', '.join(sorted(judge_factories()))}")
    questions, chosen = _questions(questions_path, filters, split, limit)

    from .judge import make_judge
    from .report import aggregate_records, run_folder_name, unique_folder, write_plots, write_report
    from .run import PipelineSystem, run_questions

    started = datetime.now()
    pipe = _pipeline(**llm_overrides(llm, model, base_url))
    settings = pipe.settings
    try:
        judge = make_judge(judge_name, pipe.embedder, settings, labels_path)
    except ValueError as exc:
        raise click.ClickException(f"judge {judge_name!r}: {exc}") from exc
    systems = [PipelineSystem(pipe)]
    base = _baseline(pipe, not quiet) if baseline else None
    if base:
        systems.append(base)
    records = run_questions(chosen, systems, pipe, judge, k, settings.min_confidence, show_progress=not quiet)
    aggregates = aggregate_records(records, k)

    root = out or settings.data_dir / "eval-runs"
    folder = unique_folder(Path(root), run_folder_name(settings, k, started))
    folder.mkdir(parents=True)
    meta = {
        "name": folder.name, "run": folder.name, "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now().isoformat(timespec="seconds"), "k": k, "depth": 10,
        "questions_file": str(questions_path),
        "questions_sha256": hashlib.sha256(Path(questions_path).read_bytes()).hexdigest()[:16],
        "filters": list(filters), "split": split, "limit": limit,
        "questions_total": len(questions), "questions_evaluated": len(chosen),
        "answerable": sum(q.answerable for q in chosen), "unanswerable": sum(not q.answerable for q in chosen),
        "systems": [s.name for s in systems], "config": _config(settings, pipe.embedder),
        "judge": judge.describe(), "git_commit": _git_commit(),
        "baseline": None if not base else {
            "description": "RecursiveCharacterTextSplitter(1000, 200) + langchain_chroma.Chroma (cosine) + same "
                           "embedder, top-k similarity_search_with_relevance_scores, same answerer",
            "directory": str(base.directory), "chunks": base.count, "key": base.key, "built_this_run": base.built},
        "argv": sys.argv[1:],
    }
    results = {"run": meta, "aggregates": aggregates, "questions": records}
    (folder / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    write_report(folder, meta, aggregates, records, k)
    write_plots(folder, aggregates, records, k)

    click.echo(_summary(aggregates, k))
    click.echo(f"\nRun folder: {folder}\nReport:     {folder / 'report.md'}")
    _check_thresholds(headline(aggregates, "ours"), minimum, maximum)


def _run_path(name: str, out: Path | None) -> Path:
    """A run given as a path, or as a folder name under --out (default <data dir>/eval-runs)."""
    path = Path(name)
    if path.exists():
        return path
    if out is None:
        from rag.settings import Settings

        out = Settings().data_dir / "eval-runs"
    if (Path(out) / name).exists():
        return Path(out) / name
    raise click.UsageError(f"--compare: no run {name!r} (neither a path nor a folder in {out})")


def _summary(aggregates: dict, k: int) -> str:
    systems = list(aggregates)
    lines = [f"{'metric':<40}" + "".join(f"{s:>10}" for s in systems) + ("        Δ" if len(systems) == 2 else "")
             + f"{'n':>6}"]
    for m in quality_metrics(k):
        vals = [aggregates[s]["overall"]["all"]["metrics"][m] for s in systems]
        row = f"{label(m):<40}" + "".join(f"{fmt(v['value']):>10}" for v in vals)
        if len(systems) == 2:
            a, b = vals[0]["value"], vals[1]["value"]
            row += f"{'–' if a is None or b is None else f'{a - b:+.3f}':>9}"
        lines.append(row + f"{vals[0]['n']:>6}")
    for stage in ("retrieval", "generation", "total"):
        cells = "".join(
            f"{fmt_ms(aggregates[s]['overall']['all']['latency'][stage]['p50']):>10}" for s in systems)
        cells95 = "".join(
            f"{fmt_ms(aggregates[s]['overall']['all']['latency'][stage]['p95']):>10}" for s in systems)
        lines.append(f"{'Latency ' + stage + ' p50':<40}{cells}")
        lines.append(f"{'Latency ' + stage + ' p95':<40}{cells95}")
    lines.append(f"{'Tokens':<40}" + "".join(f"{'n/a':>10}" for _ in systems))
    return "\n".join(lines)


def _check_thresholds(values: dict, minimum: dict[str, float], maximum: dict[str, float]) -> None:
    missed = []
    for name, bound in minimum.items():
        v = values.get(name)
        if v is None:
            missed.append(f"{name} was not measured (no selected question it applies to), minimum {bound:g}")
        elif v < bound:
            missed.append(f"{name} = {fmt(v)} is below the minimum {bound:g}")
    for name, bound in maximum.items():
        v = values.get(name)
        if v is None:
            missed.append(f"{name} was not measured (no selected question it applies to), maximum {bound:g}")
        elif v > bound:
            missed.append(f"{name} = {fmt(v)} is above the maximum {bound:g}")
    if missed:
        click.echo("Threshold missed: " + "; ".join(missed), err=True)
        sys.exit(1)
    if minimum or maximum:
        click.echo("All thresholds met: " + ", ".join(
            [f"{n} ≥ {b:g}" for n, b in minimum.items()] + [f"{n} ≤ {b:g}" for n, b in maximum.items()]))


# ---------------------------------------------------------------------------- rag eval retrieval

@eval_group.command("retrieval")
@k_option
@limit_option
@filter_option
@split_option
@click.option("--no-baseline", "no_baseline", is_flag=True, help="Only our pipeline.")
@questions_option
@quiet_option
def retrieval_command(k: int, limit: int | None, filters: tuple[str, ...], split: str, no_baseline: bool,
                      questions_path: Path, quiet: bool) -> None:
    """Retrieval only: hit@1, hit@k and MRR@10 by language and type, ours beside the baseline,
    and how well retrieval confidence separates unanswerable questions.
    """
    from .report import aggregate_records, retrieval_table
    from .run import PipelineSystem, run_questions

    _, chosen = _questions(questions_path, filters, split, limit)
    pipe = _pipeline()
    systems = [PipelineSystem(pipe)]
    if not no_baseline:
        systems.append(_baseline(pipe, not quiet))
    records = run_questions(chosen, systems, None, None, k, pipe.settings.min_confidence, show_progress=not quiet)
    aggregates = aggregate_records(records, k, answers=False)
    answerable = sum(q.answerable for q in chosen)
    click.echo(f"Retrieval on {len(chosen)} questions ({answerable} answerable; unanswerable ones are left out of "
               f"hit/MRR), split {split}, k={k}. Columns: " + " | ".join(s.name for s in systems) + ".\n")
    click.echo(retrieval_table(aggregates, k, pipe.settings.min_confidence))
    errors = sum(1 for r in records for s in r["systems"].values() if s.get("error"))
    if errors:
        click.echo(f"\n{errors} search(es) failed; they count as misses.", err=True)


# ---------------------------------------------------------------------------- rag eval calibrate

@eval_group.command("calibrate")
@click.option("--labels", "labels_path", type=click.Path(exists=True, path_type=Path), default=DEFAULT_LABELS)
@click.option("--save", is_flag=True, help="Store the result in rag/resources/support_calibration.json: the pipeline's own check and eval runs use it.")
def calibrate_command(labels_path: Path, save: bool) -> None:
    """Show how the heuristic judge scores the labelled pairs and the thresholds it picks."""
    from rag.factory import build_embedder
    from rag.settings import Settings

    from .judge import HeuristicJudge

    try:
        settings = Settings()
        judge = HeuristicJudge.calibrated(build_embedder(settings), labels_path, fresh=True,
                                          cache_dir=settings.data_dir / "eval-cache")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    cal = judge.calibration
    click.echo(f"{'id':<6}{'kind':<14}{'lang':<6}{'label':<7}{'lexical':>8}{'semantic':>9}  predicted")
    for row in cal.rows:
        mark = "" if row["predicted"] == row["supported"] else "  ✗"
        click.echo(f"{row['id']:<6}{row['kind'][:13]:<14}{row['language']:<6}{str(row['supported']):<7}"
                   f"{row['lexical']:>8.3f}{row['semantic']:>9.3f}  {row['predicted']}{mark}")
    click.echo(f"\nSupported when lexical ≥ {cal.lexical_threshold:.3f} or semantic ≥ {cal.semantic_threshold:.4f}. "
               f"{cal.n} pairs ({cal.positives} supported): accuracy {cal.accuracy:.3f}, balanced "
               f"{cal.balanced_accuracy:.3f}, leave-one-out {cal.loo_accuracy:.3f}.")
    if save:
        click.echo(f"Saved to {judge.save_calibration()}.")


# ---------------------------------------------------------------------------- rag eval feedback

@eval_group.command("feedback")
@click.option("--from", "source", type=click.Path(path_type=Path), default=None,
              help="Feedback file (default: <RAG data dir>/feedback.jsonl, where the web chat and the Slack bot write).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where the regression cases go (default: <RAG data dir>/feedback-cases.jsonl).")
@click.option("--replay/--no-replay", default=True, show_default=True,
              help="Ask every case again and report which still pass.")
def feedback_command(source: Path | None, out: Path | None, replay: bool) -> None:
    """Turn users' thumbs up/down into regression cases and replay them: an up-voted answer must keep
    its sources, a down-voted one must change. Exit 1 when an up-voted answer regressed."""
    from rag.feedback import feedback_path, read_feedback
    from rag.settings import Settings

    from .feedback_cases import cases_from_feedback
    from .feedback_cases import replay as replay_cases

    settings = Settings()
    source = source or feedback_path(settings)
    if not source.is_file():
        raise click.ClickException(f"No feedback yet: {source} does not exist (votes in the web chat create it).")
    cases = cases_from_feedback(read_feedback(source))
    out = out or settings.data_dir / "feedback-cases.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(c.to_json(), ensure_ascii=False) + "\n" for c in cases), encoding="utf-8")
    up = sum(c.vote == "up" for c in cases)
    click.echo(f"{len(cases)} regression cases ({up} up, {len(cases) - up} down) from {source} → {out}")
    if not replay or not cases:
        return
    results = replay_cases(_pipeline(), cases)
    for r in results:
        verdict = "ok  " if r["passed"] else ("REGRESSED" if r["vote"] == "up" else "still bad")
        note = f"  ({r['comment']})" if r["comment"] else ""
        click.echo(f"{verdict:<9} {r['vote']:<4} {r['id']}  {r['question'][:70]}{note}")
    regressed = [r for r in results if r["vote"] == "up" and not r["passed"]]
    fixed = sum(r["passed"] for r in results if r["vote"] == "down")
    click.echo(f"\nUp-voted answers kept: {up - len(regressed)}/{up}; down-voted answers changed: "
               f"{fixed}/{len(cases) - up}.")
    if regressed:
        sys.exit(1)
