"""`rag`: ingest, search and ask from the command line; `--json` is the stable scripting contract.

Commands that live outside the core (`rag serve` from ui/, `rag eval` from eval/, `rag slack` from
slackbot/) are plugins found through the `rag.commands` entry-point group and imported only when
invoked, so the core imports nothing from them and `rag ask` does not pay for Gradio's import time.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

import click
from pydantic import ValidationError

from rag.errors import UserError
from rag.events import Completed, Retrieved, TextDelta
from rag.factory import build_pipeline
from rag.logs import configure_logging
from rag.models import Answer
from rag.pipeline import Pipeline
from rag.settings import Settings


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


def load_settings(**overrides) -> Settings:
    """The environment's settings with the command's options; a bad value stops with its variable named."""
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        problems = "; ".join(f"RAG_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise click.ClickException(f"Invalid setting: {problems}") from None


@cache
def pipeline(**overrides) -> Pipeline:
    """One pipeline per process, built from the environment's settings and the command's options."""
    return build_pipeline(load_settings(**overrides))


def ready_pipeline(**overrides) -> Pipeline:
    """The pipeline, with the configured corpus indexed on first use (progress on stderr)."""
    pipe = pipeline(**overrides)
    report = pipe.ensure_ingested()
    if report:
        click.echo(report.summary(), err=True)
    return pipe


SERVERS = {"serve", "slack"}  # log every request by default; one-shot commands only warnings


@click.group(cls=PluginGroup)
@click.version_option(package_name="interview-rag")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Ask the Anthropic/Claude interviews questions, in English or Chinese, with cited answers."""
    configure_logging(load_settings(), "info" if ctx.invoked_subcommand in SERVERS else "warning")


def with_options(options):
    """Apply a tuple of click decorators, first one outermost (as if stacked in that order)."""
    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f
    return decorate


llm_options = (
    click.option("--llm", type=click.Choice(["extractive", "openai", "anthropic", "llamacpp"]), default=None,
                 help="The LLM that writes answers (ask, chat) and enrichments (ingest --enrich); default RAG_LLM, "
                      "else none: answers quote."),
    click.option("--model", default=None, help="LLM model name (llamacpp: a GGUF path); default RAG_LLM_MODEL."),
    click.option("--base-url", default=None, help="OpenAI-compatible server URL; default RAG_LLM_BASE_URL."),
)


def llm_overrides(llm: str | None, model: str | None, base_url: str | None) -> dict:
    """`llm_options` as `Settings` fields (None: keep the environment's)."""
    return {"llm": llm, "llm_model": model, "llm_base_url": base_url}


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--rebuild", is_flag=True,
              help="Build the index again from these paths only (e.g. after changing embedder); the old one "
                   "serves until the new one is complete.")
@click.option("--enrich", is_flag=True,
              help="With an LLM: first write an English gist and questions for each Chinese chunk that has none "
                   "stored (once; every ingest reuses them).")
@with_options(llm_options)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def ingest(paths: tuple[Path, ...], rebuild: bool, enrich: bool, llm: str | None, model: str | None,
           base_url: str | None, quiet: bool) -> None:
    """Index transcripts (.txt/.md files or folders); defaults to the bundled interviews."""
    try:
        report = pipeline(**llm_overrides(llm, model, base_url)).ingest(
            list(paths) or None, rebuild=rebuild, show_progress=not quiet, enrich=enrich)
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
    from rag.doctor import run_checks

    results = run_checks(Settings())
    for name, finding in results:
        click.echo(f"{'ok  ' if finding.ok else 'FAIL'}  {name}: {finding.message}")
    if not all(finding.ok for _, finding in results):
        sys.exit(1)


def _questions(question: str) -> Iterator[str]:
    if question != "-":
        yield question
        return
    sys.stdin.reconfigure(errors="replace")  # a stray non-UTF-8 byte spoils its character, not the batch
    for line in sys.stdin:
        if line.strip():
            yield line.strip()


def _run(question: str, as_json: bool, handle, render, overrides: dict | None = None) -> None:
    """Answer each question; in JSON mode a bad line yields an error object and the rest go on."""
    try:
        pipe = ready_pipeline(**(overrides or {}))
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
        if payload is None:  # already streamed to the terminal
            continue
        click.echo(json.dumps(payload, ensure_ascii=False) if as_json else render(payload))
    if failed:
        sys.exit(1)


def _question_command(f):
    """The arguments `rag search` and `rag ask` share."""
    return cli.command()(with_options((
        click.argument("question"),
        click.option("-k", "k", type=click.IntRange(1, 50), default=None, help="How many passages (default 5)."),
        click.option("--speaker", help="Only this person's words (e.g. 'Amanda Askell', 'Askell', '阿莫迪')."),
        click.option("--json", "as_json", is_flag=True, help="One JSON object per question."),
    ))(f))


@_question_command
def search(question: str, k: int | None, speaker: str | None, as_json: bool) -> None:
    """Show the passages that best match QUESTION ('-' reads one question per line from stdin)."""

    def handle(pipe: Pipeline, q: str) -> dict:
        result = pipe.search(q, k, speaker, interface="cli")
        return {"query": q, "confidence": result.confidence, "passages": [p.to_json() for p in result.passages]}

    _run(question, as_json, handle, render_passages)


@_question_command
@with_options(llm_options)
@click.option("--events", is_flag=True, help="Stream every event as one JSON object per line.")
def ask(question: str, k: int | None, speaker: str | None, as_json: bool, llm: str | None, model: str | None,
        base_url: str | None, events: bool) -> None:
    """Answer QUESTION with numbered citations ('-' reads one question per line from stdin)."""
    stream = not as_json and not events and sys.stdout.isatty()

    def handle(pipe: Pipeline, q: str) -> dict | None:
        if events:
            for event in pipe.ask_stream(q, k=k, speaker=speaker, interface="cli"):
                click.echo(json.dumps(event.to_json(), ensure_ascii=False))
            return None
        if stream:
            stream_to_terminal(pipe.ask_stream(q, k=k, speaker=speaker, interface="cli"))
            return None
        return pipe.ask(q, k=k, speaker=speaker, interface="cli").to_json()

    _run(question, as_json or events, handle, render_answer, llm_overrides(llm, model, base_url))


@cli.command()
@with_options(llm_options)
@click.option("-k", "k", type=click.IntRange(1, 50), default=None, help="How many passages (default 5).")
def chat(llm: str | None, model: str | None, base_url: str | None, k: int | None) -> None:
    """Chat in the terminal: follow-up questions keep the conversation's topic (Ctrl-D ends, /clear forgets)."""
    try:
        pipe = ready_pipeline(**llm_overrides(llm, model, base_url))
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    history: list[dict] = []
    while True:
        try:
            question = input("you> ")
        except (EOFError, KeyboardInterrupt):
            click.echo()
            return
        if question.strip() == "/clear":
            history.clear()
            continue
        if not question.strip():
            continue
        try:
            answer = stream_to_terminal(pipe.ask_stream(question, history, k=k, interface="cli"))
        except UserError as exc:
            click.echo(f"Error: {exc}", err=True)
            continue
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]


def stream_to_terminal(events) -> Answer:
    """Print the draft as it is written, then the checked sources; returns the final answer."""
    answer = None
    for event in events:
        if isinstance(event, Retrieved) and event.query.rewritten_by:
            click.echo(click.style(f"(searching: {event.query.question})", dim=True), err=True)
        elif isinstance(event, TextDelta):
            if event.replace:
                click.echo()
            click.echo(event.text, nl=False)
        elif isinstance(event, Completed):
            answer = event.answer
    click.echo()
    payload = answer.to_json()
    click.echo(render_sources(payload))
    return answer


def _where(p: dict) -> str:
    return f"{p['attribution']} · {p['source']} [{p['char_start']}:{p['char_end']}]"


def render_passages(payload: dict) -> str:
    lines = []
    for p in payload["passages"]:
        lines.append(f"{p['rank']}. ({p['score']:.4f}) {_where(p)}\n   {p['text'][:400]}")
    return "\n".join(lines) or "No passages."


def render_sources(payload: dict) -> str:
    """The footer of an answer: fallback notice, sources (unsupported ones marked), flagged claims."""
    lines = []
    if payload.get("fallback"):
        lines.append(f"(The LLM could not answer: {payload['fallback']}. Quoting the passages instead.)")
    if payload["citations"]:
        lines.append("")
    for c in payload["citations"]:
        mark = "" if c.get("supported") is not False else "  [unsupported: this passage does not back the claim]"
        lines.append(f"[{c['n']}] {_where(c)}{mark}")
    for claim in payload.get("claims", []):
        if claim["supported"] is False:
            lines.append(f"! not supported by its citation: {claim['text']}")
    if payload.get("invalid_citations"):
        lines.append(f"! removed citations of passages that were not given: {', '.join(payload['invalid_citations'])}")
    return "\n".join(lines)


def render_answer(payload: dict) -> str:
    return payload["answer"] + "\n" + render_sources(payload)


def main() -> None:
    cli()
