"""`rag`: ingest, search and ask from the command line; `--json` is the stable scripting contract.

Commands that live outside the core (`rag serve` from ui/, `rag eval` from eval/) are plugins
found through the `rag.commands` entry-point group and imported only when invoked, so the core
imports nothing from them and `rag ask` does not pay for Gradio's import time.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

import click

from .factory import build_pipeline
from .errors import UserError
from .pipeline import Pipeline
from .settings import Settings


class PluginGroup(click.Group):
    def _plugins(self) -> dict:
        return {ep.name: ep for ep in entry_points(group="rag.commands")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in self._plugins():
            command = self._plugins()[name].load()
        return command


@cache
def pipeline() -> Pipeline:
    """One pipeline per process, built from the environment's settings."""
    return build_pipeline(Settings())


def ready_pipeline() -> Pipeline:
    """The pipeline, with the configured corpus indexed on first use (progress on stderr)."""
    pipe = pipeline()
    report = pipe.ensure_ingested()
    if report:
        click.echo(report.summary(), err=True)
    return pipe


@click.group(cls=PluginGroup)
@click.version_option(package_name="interview-rag")
def cli() -> None:
    """Ask the Anthropic/Claude interviews questions, in English or Chinese, with cited answers."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--rebuild", is_flag=True,
              help="Build the index again from these paths only (e.g. after changing embedder); the old one "
                   "serves until the new one is complete.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def ingest(paths: tuple[Path, ...], rebuild: bool, quiet: bool) -> None:
    """Index transcripts (.txt/.md files or folders); defaults to the bundled interviews."""
    try:
        report = pipeline().ingest(list(paths) or None, rebuild=rebuild, show_progress=not quiet)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    for error in report.errors:
        click.echo(f"error: {error}", err=True)
    for path in report.removed_files:
        click.echo(f"removed: {path} (no longer in its folder)")
    click.echo(report.summary())
    if report.errors:
        sys.exit(1)


@cli.command()
def doctor() -> None:
    """Check the install (models offline, index readable, embedder) and say what to fix; exit 1 if broken."""
    from .doctor import run_checks

    results = run_checks(Settings())
    for name, finding in results:
        click.echo(f"{'ok  ' if finding.ok else 'FAIL'}  {name}: {finding.message}")
    if not all(finding.ok for _, finding in results):
        sys.exit(1)


def _questions(question: str) -> Iterator[str]:
    if question != "-":
        yield question
        return
    for line in sys.stdin:
        if line.strip():
            yield line.strip()


def _run(question: str, as_json: bool, handle, render) -> None:
    """Answer each question; in JSON mode a bad line yields an error object and the rest go on."""
    try:
        pipe = ready_pipeline()
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    failed = False
    for q in _questions(question):
        try:
            payload = handle(pipe, q)
        except UserError as exc:
            if not as_json:
                raise click.ClickException(str(exc)) from exc
            payload, failed = {"question": q, "error": str(exc)}, True
            click.echo(json.dumps(payload, ensure_ascii=False))
            continue
        click.echo(json.dumps(payload, ensure_ascii=False) if as_json else render(payload))
    if failed:
        sys.exit(1)


def _question_command(f):
    """The arguments `rag search` and `rag ask` share."""
    for option in reversed((
        click.argument("question"),
        click.option("-k", "k", type=click.IntRange(1, 50), default=None, help="How many passages (default 5)."),
        click.option("--speaker", help="Only this person's words (e.g. 'Amanda Askell', 'Askell', '阿莫迪')."),
        click.option("--json", "as_json", is_flag=True, help="One JSON object per question."),
    )):
        f = option(f)
    return cli.command()(f)


@_question_command
def search(question: str, k: int | None, speaker: str | None, as_json: bool) -> None:
    """Show the passages that best match QUESTION ('-' reads one question per line from stdin)."""

    def handle(pipe: Pipeline, q: str) -> dict:
        result = pipe.search(q, k, speaker)
        return {"query": q, "confidence": result.confidence, "passages": [p.to_json() for p in result.passages]}

    _run(question, as_json, handle, render_passages)


@_question_command
def ask(question: str, k: int | None, speaker: str | None, as_json: bool) -> None:
    """Answer QUESTION with numbered citations ('-' reads one question per line from stdin)."""
    _run(question, as_json, lambda pipe, q: pipe.ask(q, k, speaker).to_json(), render_answer)


def _where(p: dict) -> str:
    return f"{p['attribution']} · {p['source']} [{p['char_start']}:{p['char_end']}]"


def render_passages(payload: dict) -> str:
    lines = []
    for p in payload["passages"]:
        lines.append(f"{p['rank']}. ({p['score']:.4f}) {_where(p)}\n   {p['text'][:400]}")
    return "\n".join(lines) or "No passages."


def render_answer(payload: dict) -> str:
    lines = [payload["answer"]]
    if payload["citations"]:
        lines.append("")
    for c in payload["citations"]:
        lines.append(f"[{c['n']}] {_where(c)}")
    return "\n".join(lines)


def main() -> None:
    cli()
