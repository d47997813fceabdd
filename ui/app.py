"""The browser chat: a Gradio front end over `Pipeline.ask_stream`.

Everything the UI does goes through the same pipeline as `rag ask`, so answers match the CLI.
The handlers are plain functions of (pipeline, inputs) so tests can call them without a browser.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network here; must precede the import

import gradio as gr

from rag.answering import fallback_notice
from rag.events import Completed, TextDelta
from rag.prompts import load_phrases
from rag.errors import UserError
from rag.models import Answer, Citation
from rag.pipeline import Pipeline
from rag.speakers import default_speakers

log = logging.getLogger(__name__)

ANY_SPEAKER = "Any"
EXAMPLES = [
    "What did Askell say about sycophancy?",
    "克里斯·欧拉如何看待神经网络之美？",
    "What does Dario Amodei think about the race to the top?",
    "What is the capital of Peru?",
]
HEADER = """\
# Interview Q&A: Anthropic and Claude
Ask about the interviews with Amanda Askell, Dario Amodei and Chris Olah, in English or 中文.
Answers quote the transcripts with numbered sources [n]; when the interviews don't cover a
question, the bot says so instead of guessing.
"""
EMPTY_QUESTION = "Please type a question first (English or 中文)."
THINKING = "_Searching the interviews…_"
TITLE_CHARS = 48

# Local fonts only: the default theme would fetch web fonts, and there is no internet.
THEME = gr.themes.Soft(
    font=["system-ui", "Noto Sans CJK SC", "Noto Sans", "DejaVu Sans", "sans-serif"],
    font_mono=["DejaVu Sans Mono", "monospace"],
)
CSS = """
#chat blockquote { font-size: 0.92em; margin-top: 0.2em; }
"""

Message = dict  # {"role": "user" | "assistant", "content": str}, Gradio's messages format


# ---------------------------------------------------------------------------- formatting

_MD_SPECIAL = re.compile(r"([\\`*_<>~|$#])")
_MD_LINE_START = re.compile(r"^(\s*\d*)([-+=.)])")  # list items, "---"/"===" headings


def escape_markdown(text: str, brackets: bool = True) -> str:
    """Corpus text shown literally: transcripts contain stray `**`, `#` and `<` that would render."""
    text = _MD_SPECIAL.sub(r"\\\1", text)
    if brackets:
        text = text.replace("[", r"\[").replace("]", r"\]")
    return text


def citation_label(citation: Citation) -> str:
    """Who the cited words belong to: a person, or an editorial/narrator summary *on* someone."""
    return citation.passage.chunk.attribution


def format_citation(citation: Citation) -> str:
    """One source: who, where (file and character range), then the passage quoted in full."""
    chunk = citation.passage.chunk
    text = citation.passage.shown_text or chunk.text
    lines = (_MD_LINE_START.sub(r"\1\\\2", escape_markdown(line)) for line in text.splitlines())
    quoted = "\n".join(f"> {line}" if line.strip() else ">" for line in lines)
    title = chunk.title or ""
    if len(title) > TITLE_CHARS:  # titles are long headlines; file and range already locate it
        title = title[:TITLE_CHARS].rstrip() + "…"
    title = f" · *{escape_markdown(title)}*" if title else ""
    return (
        f"**[{citation.n}] {escape_markdown(citation_label(citation))}** · "
        f"`{chunk.source}` · {chunk.char_start}–{chunk.char_end}{title}\n\n{quoted}"
    )


def format_answer(answer: Answer) -> str:
    """The finished message: the answer with its [n] markers, then the cited passages."""
    text = answer.text
    note = load_phrases()["en"]["translated_note"]
    if note and text.endswith("\n" + note):  # a paragraph of its own, not part of the last quote
        text = text[: -len(note)] + "\n" + note
    text = escape_markdown(text, brackets=False)  # keep the [n] markers as typed
    if answer.fallback:
        text = f"_{escape_markdown(fallback_notice(answer.fallback, answer.query.language if answer.query else 'en'))}_\n\n{text}"
    if answer.abstained or not answer.citations:
        return text
    sources = "\n\n".join(format_citation(c) for c in answer.citations)
    return f"{text}\n\n---\n**Sources**\n\n{sources}"


def speaker_filter(choice: str | None) -> str | None:
    """The dropdown's "Any" means no filter."""
    choice = (choice or "").strip()
    return None if not choice or choice == ANY_SPEAKER else choice


def speaker_choices() -> list[str]:
    return [ANY_SPEAKER, *(p.name for p in default_speakers().people)]


# ---------------------------------------------------------------------------- handlers


def respond(
    pipeline: Pipeline, question: str | None, speaker: str | None, history: list[Message] | None
) -> Iterator[tuple[list[Message], str]]:
    """Stream one question's answer into the chat; yields (history, textbox value).

    Errors become chat messages, never exceptions: a crashed handler would leave Gradio's
    generic error toast and a half-written message.
    """
    history = list(history or [])
    question = (question or "").strip()
    if not question:
        history.append({"role": "assistant", "content": EMPTY_QUESTION})
        yield history, ""
        return

    history.append({"role": "user", "content": question})
    reply: Message = {"role": "assistant", "content": THINKING}
    history.append(reply)
    yield history, ""

    streamed = ""
    earlier = [m for m in history[:-2] if m.get("content") not in (EMPTY_QUESTION, THINKING)]
    try:
        for event in pipeline.ask_stream(question, earlier, speaker=speaker_filter(speaker)):
            if isinstance(event, Completed):
                reply["content"] = format_answer(event.answer)
            elif isinstance(event, TextDelta):
                streamed = event.text if event.replace else streamed + event.text
                reply["content"] = escape_markdown(streamed, brackets=False)
            else:
                continue
            yield history, ""
    except UserError as exc:
        reply["content"] = f"⚠️ {escape_markdown(str(exc))}"
        yield history, ""
    except Exception as exc:  # keep the app usable whatever went wrong; the log has the traceback
        log.exception("answering %r failed", question)
        reply["content"] = (
            f"⚠️ Something went wrong while answering ({escape_markdown(type(exc).__name__)}). "
            "Please try again or rephrase the question."
        )
        yield history, ""


# ---------------------------------------------------------------------------- the app


def build_app(pipeline: Pipeline) -> gr.Blocks:
    """The chat page. Launch it with `launch()` so theme and CSS come along."""

    def ask(question: str, speaker: str, history: list[Message]):
        yield from respond(pipeline, question, speaker, history)

    with gr.Blocks(title="Interview Q&A: Anthropic and Claude") as app:
        gr.Markdown(HEADER)
        chatbot = gr.Chatbot(
            elem_id="chat",
            show_label=False,
            height="70vh",
            min_height=420,
            latex_delimiters=[],  # "$" in transcripts is money, not maths
            buttons=["copy"],
            placeholder="Ask a question below, or click an example.",
        )
        with gr.Row(equal_height=True):
            question = gr.Textbox(
                elem_id="question",
                show_label=False,
                placeholder="Ask in English or 中文… (Enter to send)",
                submit_btn="Ask",
                autofocus=True,
                scale=4,
            )
            speaker = gr.Dropdown(
                speaker_choices(),
                value=ANY_SPEAKER,
                label="Only this speaker",
                elem_id="speaker",
                scale=1,
                min_width=180,
            )
        gr.Markdown("Examples:")
        with gr.Row():
            buttons = [gr.Button(q, size="sm", variant="secondary") for q in EXAMPLES]
        gr.ClearButton([chatbot, question], value="Clear chat", size="sm")

        # One concurrency group: every trigger uses the same pipeline, one question at a time.
        settings = dict(outputs=[chatbot, question], concurrency_id="ask", concurrency_limit=1)
        question.submit(ask, [question, speaker, chatbot], **settings)
        for button in buttons:
            button.click(ask, [button, speaker, chatbot], **settings)
    return app


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, **kwargs) -> gr.Blocks:
    """Start the server: local only (no share link, no SSR/Node), with the app's theme and CSS."""
    app.queue(default_concurrency_limit=1)
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        ssr_mode=False,
        theme=THEME,
        css=CSS,
        **kwargs,
    )
    return app
