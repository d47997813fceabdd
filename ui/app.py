"""The browser chat: a Gradio front end over `Pipeline.ask_stream`, and the `/chat` API.

Everything goes through the same pipeline as `rag ask`, so answers match the CLI; this module
renders the pipeline's events (ui/render.py makes the HTML) and never re-decides what the
pipeline decides. The handlers are plain functions of (pipeline, inputs), testable without a
browser.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from html import escape
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network here; must precede the import

import gradio as gr

from rag.errors import ConfigError, UserError
from rag.events import Completed, Retrieved, TextDelta
from rag.feedback import record_feedback, settings_in_use
from rag.logs import new_request_id
from rag.pipeline import Pipeline, clean_question
from rag.speakers import default_speakers
from rag.text import detect_language

from .indexing import Indexing
from .render import answer_markdown, draft_markdown, how_panel, passage_card, search_markdown, source_anchor

log = logging.getLogger(__name__)

ANY = "Any"
ANSWER, SEARCH = "Answer", "Search passages"
EXAMPLES = [
    "What did Askell say about sycophancy?",
    "克里斯·欧拉如何看待神经网络之美？",
    "What does Dario Amodei think about the race to the top?",
    "阿莫迪怎么看监管？",
    "What is the capital of Peru?",
]
HEADER = """\
# Interview Q&A: Anthropic and Claude
Ask about the interviews with Amanda Askell, Dario Amodei and Chris Olah, in English or 中文; follow-up
questions keep the topic. Every answer line cites a passage `[n]`: click it to read the passage.
When the interviews don't cover a question, the bot says so instead of guessing.
"""
THINKING = "_Searching the interviews…_"
WRITING = "_Writing the answer…_"
NO_SOURCES = '<p class="empty">Sources appear here as soon as the passages are found.</p>'
APOLOGY = ("⚠️ Something went wrong while answering ({kind}; request id `{request_id}`). Please try again or "
           "rephrase the question.")

# Local fonts only: the default theme would fetch web fonts, and there is no internet.
THEME = gr.themes.Soft(
    font=["system-ui", "Noto Sans CJK SC", "Noto Sans", "DejaVu Sans", "sans-serif"],
    font_mono=["DejaVu Sans Mono", "monospace"],
)
CSS = """
#sources { max-height: 75vh; overflow-y: auto !important; }
#sources .turn > summary { font-weight: 600; cursor: pointer; margin: 0.4em 0; }
#sources .status { color: var(--body-text-color-subdued); font-style: italic; }
#sources .source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 0.5em 0.7em; margin: 0.5em 0; }
#sources .source.focus { outline: 3px solid var(--color-accent); }
#sources .source.flagged { border-color: #d97706; }
#sources .who .n { font-weight: 700; margin-right: 0.3em; }
#sources .topics { color: var(--body-text-color-subdued); }
#sources .gist { font-style: italic; margin: 0.3em 0; }
#sources .unsupported { background: #fde68a; color: #78350f; border-radius: 4px; padding: 0 0.3em; font-size: 0.85em; }
#sources .where { font-size: 0.85em; color: var(--body-text-color-subdued); margin: 0.2em 0; }
#sources .quote { font-size: 0.93em; line-height: 1.5; }
#sources .quote mark { background: #fef08a; color: inherit; }
#sources .parallel { display: grid; grid-template-columns: 1fr 1fr; gap: 0.8em; }
#sources .lang { font-size: 0.8em; font-weight: 600; color: var(--body-text-color-subdued); }
#sources .ctx { font-size: 0.88em; color: var(--body-text-color-subdued); }
#sources .how table { font-size: 0.85em; margin: 0.3em 0; }
#sources .how th { text-align: left; padding-right: 0.6em; vertical-align: top; }
"""
# [n] links jump to their passage in the sources panel (opening the turn it belongs to)
HEAD = """<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a");
  const href = link ? link.getAttribute("href") || "" : "";
  const at = href.indexOf("#src-");
  if (at < 0) return;
  event.preventDefault(); event.stopPropagation();
  const card = document.getElementById(href.slice(at + 1));
  if (!card) return;
  for (let node = card.parentElement; node; node = node.parentElement) if (node.tagName === "DETAILS") node.open = true;
  document.querySelectorAll("#sources .source.focus").forEach((c) => c.classList.remove("focus"));
  card.classList.add("focus");
  card.scrollIntoView({block: "center"});
}, true);
</script>"""

Message = dict  # {"role": "user" | "assistant", "content": str}, Gradio's messages format
Turn = dict  # one question: {"question", "start" (its index in the chat), "history", "answer" (JSON), "html"}


READY = Indexing()
READY.finished.set()


# ---------------------------------------------------------------------------- inputs


def chosen(value: str | None) -> str | None:
    """A dropdown's "Any" (or nothing) means no filter."""
    value = (value or "").strip()
    return None if not value or value == ANY else value


def speaker_choices() -> list[str]:
    return [ANY, *(p.name for p in default_speakers().people)]


def document_choices(pipeline: Pipeline) -> list[tuple[str, str]]:
    titles = {c.source: c.title for c in pipeline.index.chunks.values()}
    return [(ANY, ANY), *((f"{(titles[s] or s)[:50]} ({s})", s) for s in sorted(titles))]


def public_settings(pipeline: Pipeline) -> dict:
    """The settings in use, safe to show: no key, and no credentials inside a server URL."""
    shown = settings_in_use(pipeline.settings)
    if shown.get("llm_base_url"):
        parts = urlsplit(shown["llm_base_url"])
        shown["llm_base_url"] = urlunsplit(parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else "")))
    return shown


def conversation(turns: list[Turn]) -> list[Message]:
    """What the pipeline gets as history: the questions and the answers' plain text."""
    return [m for t in turns if t.get("answer") for m in (
        {"role": "user", "content": t["question"]}, {"role": "assistant", "content": t["answer"]["answer"]})]


def sources_html(turns: list[Turn]) -> str:
    """Every turn's sources, newest first; the newest open, older ones a click away."""
    if not turns:
        return NO_SOURCES
    return "".join(
        f'<details class="turn" id="turn-{i}"{" open" if i == len(turns) else ""}>'
        f"<summary>{i}. {escape(t['question'])}</summary>{t['html']}</details>"
        for i, t in reversed(list(enumerate(turns, 1))))


# ---------------------------------------------------------------------------- handlers


def respond(pipeline: Pipeline, question: str | None, history: list[Message] | None, turns: list[Turn] | None,
            speaker: str | None = ANY, source: str | None = ANY, k: int | None = None, mode: str = ANSWER,
            ) -> Iterator[tuple[list[Message], str, str, list[Turn]]]:
    """Stream one question into the chat; yields (chat, textbox value, sources panel, turns).

    Errors become chat messages, never exceptions: a crashed handler would leave Gradio's
    generic error toast and a half-written message.
    """
    history, turns = list(history or []), list(turns or [])
    try:
        question = clean_question(question)
    except UserError as exc:  # empty or too long: say so, keep the text to edit
        history.append({"role": "assistant", "content": f"⚠️ {draft_markdown(str(exc))}"})
        yield history, question or "", sources_html(turns), turns
        return

    turn: Turn = {"question": question, "start": len(history), "history": conversation(turns), "answer": None,
                  "html": '<p class="status">Searching…</p>'}
    turns.append(turn)
    number = len(turns)
    reply: Message = {"role": "assistant", "content": THINKING}
    history += [{"role": "user", "content": draft_markdown(question)}, reply]
    yield history, "", sources_html(turns), turns

    language = detect_language(question)
    neighbours = pipeline.index.neighbours
    request_id = new_request_id()  # in the log line and in the apology, so a report can be matched
    try:
        if mode == SEARCH:
            result = pipeline.search(question, k, chosen(speaker), chosen(source), interface="web",
                                     request_id=request_id)
            reply["content"] = search_markdown(result)
            turn["html"] = "".join(passage_card(p, source_anchor(number, p.rank), f"#{p.rank}", language,
                                                neighbours(p.chunk)) for p in result.passages)
            yield history, "", sources_html(turns), turns
            return
        retrieved, streamed = None, ""
        for event in pipeline.ask_stream(question, turn["history"], k, chosen(speaker), chosen(source),
                                         interface="web", request_id=request_id):
            if isinstance(event, Retrieved):
                retrieved = event
                reply["content"] = WRITING
                cards = "".join(passage_card(p, f"found-{number}-{p.rank}", f"#{p.rank}", language,
                                             neighbours(p.chunk)) for p in event.result.passages)
                turn["html"] = f'<p class="status">Passages found; the answer is being written.</p>{cards}'
            elif isinstance(event, TextDelta):
                streamed = event.text if event.replace else streamed + event.text
                reply["content"] = draft_markdown(streamed)
            elif isinstance(event, Completed):
                answer = event.answer
                turn["answer"] = answer.to_json()
                reply["content"] = answer_markdown(answer, number, language)
                turn["html"] = cited_sources(pipeline, answer, number, language) + how_panel(retrieved, answer)
            yield history, "", sources_html(turns), turns
    except UserError as exc:
        reply["content"] = f"⚠️ {draft_markdown(str(exc))}"
        yield history, "", sources_html(turns), turns
    except Exception as exc:  # keep the app usable whatever went wrong; the log has the traceback
        log.exception("request %s failed", request_id)
        reply["content"] = APOLOGY.format(kind=type(exc).__name__, request_id=request_id)
        yield history, "", sources_html(turns), turns


def cited_sources(pipeline: Pipeline, answer, number: int, language: str) -> str:
    """The cited passages of a finished answer, each with the claims that cite it."""
    if answer.abstained or not answer.citations:
        return '<p class="status">No sources: the interviews don\'t cover this question.</p>'
    return "".join(passage_card(c.passage, source_anchor(number, c.n), f"[{c.n}]", language,
                                pipeline.index.neighbours(c.passage.chunk), c.quote, c.supported)
                   for c in answer.citations)


def retry(pipeline: Pipeline, history: list[Message] | None, turns: list[Turn] | None, *filters):
    """Ask the last question again (after Stop, or to see whether a failing LLM recovered)."""
    turns = list(turns or [])
    if not turns:
        yield list(history or []), "", sources_html(turns), turns
        return
    last = turns.pop()
    yield from respond(pipeline, last["question"], list(history or [])[: last["start"]], turns, *filters)


def vote(pipeline: Pipeline, turns: list[Turn] | None, comment: str, liked: bool | str, index, user: str | None):
    """Thumbs up/down on an answer: appended to the feedback file; returns (status, comment box)."""
    turn = next((t for t in turns or [] if t["start"] + 1 == (index if isinstance(index, int) else index[0])), None)
    if turn is None or not turn.get("answer"):
        return "Only finished answers can be rated.", comment
    direction = "up" if liked is True or liked == "Like" else "down"
    record_feedback(pipeline.settings, interface="web", vote=direction, answer=turn["answer"], comment=comment,
                    history=turn["history"], user=user)
    return f"Thanks: your {'👍' if direction == 'up' else '👎'} on “{turn['question'][:60]}” was saved.", ""


def chat_api(pipeline: Pipeline, question: str, history: list[Message] | None, speaker: str | None,
             source: str | None, k: int | None) -> dict:
    """`/chat` for programs: the finished answer as `rag ask --json` prints it."""
    request_id = new_request_id()
    try:
        return pipeline.ask(question, history or [], k, chosen(speaker), chosen(source), interface="api",
                            request_id=request_id).to_json()
    except UserError as exc:
        raise gr.Error(str(exc)) from exc
    except Exception as exc:
        log.exception("request %s failed", request_id)
        raise gr.Error(APOLOGY.format(kind=type(exc).__name__, request_id=request_id)[2:]) from exc


# ---------------------------------------------------------------------------- the app


def concurrency_limit(pipeline: Pipeline) -> int:
    """How many questions run at once (bench/bench_web.py measured it; README "Web chat").

    An in-process GGUF model is one llama.cpp context that cannot serve two requests: one at a time.
    """
    return 1 if pipeline.settings.llm == "llamacpp" else pipeline.settings.web_concurrency


def build_app(pipeline: Pipeline, indexing: Indexing = READY) -> gr.Blocks:
    """The chat page. Serve it with `launch()` or `mount()` so queue, theme, CSS and script come along.

    `indexing`: the index being built in the background; questions wait for it."""
    limit = dict(concurrency_id="pipeline", concurrency_limit=concurrency_limit(pipeline))

    with gr.Blocks(title="Interview Q&A: Anthropic and Claude") as app:
        gr.Markdown(HEADER)
        banner = gr.Markdown(indexing.message(), elem_id="indexing")
        ticker = gr.Timer(1.0, active=bool(indexing.message()))
        turns = gr.State([])
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    elem_id="chat", show_label=False, height="62vh", min_height=420,
                    latex_delimiters=[],  # "$" in transcripts is money, not maths
                    buttons=["copy"], feedback_options=("Like", "Dislike"),
                    placeholder="Ask a question below, or click an example.",
                )
                question = gr.Textbox(elem_id="question", show_label=False, submit_btn="Ask",
                                      placeholder="Ask in English or 中文… (Enter to send)", autofocus=True)
                with gr.Row():
                    stop = gr.Button("Stop", size="sm", variant="stop", elem_id="stop")
                    again = gr.Button("Retry", size="sm", elem_id="retry")
                    clear = gr.Button("Clear chat", size="sm", elem_id="clear")
                with gr.Row():
                    comment = gr.Textbox(elem_id="comment", show_label=False, scale=3,
                                         placeholder="Optional comment, saved with your next thumbs up or down")
                    status = gr.Markdown(elem_id="feedback-status")
                gr.Markdown("Examples:")
                with gr.Row():
                    examples = [gr.Button(q, size="sm", variant="secondary") for q in EXAMPLES]
            with gr.Column(scale=2):
                with gr.Accordion("Filters and mode", open=False, elem_id="filters"):
                    mode = gr.Radio([ANSWER, SEARCH], value=ANSWER, label="Answer or just list passages",
                                    elem_id="mode")
                    speaker = gr.Dropdown(speaker_choices(), value=ANY, label="Only this speaker", elem_id="speaker")
                    source = gr.Dropdown(document_choices(pipeline), value=ANY, label="Only this document",
                                         elem_id="document")
                with gr.Accordion("Settings in use", open=False, elem_id="settings"):
                    k = gr.Slider(1, 20, value=pipeline.settings.top_k, step=1, label="Passages per answer (k)")
                    gr.JSON(public_settings(pipeline), show_label=False)
                gr.Markdown("### Sources")
                sources = gr.HTML(NO_SOURCES, elem_id="sources")

        filters = [speaker, source, k, mode]
        outputs = [chatbot, question, sources, turns]
        hidden = dict(api_visibility="private", **limit)

        def ask(text, history, state, *options):
            if waiting := indexing.message():
                yield [*history, {"role": "assistant", "content": waiting}], text, sources_html(state), state
                return
            yield from respond(pipeline, text, history, state, *options)

        def ask_again(history, state, *options):
            if not indexing.message():
                yield from retry(pipeline, history, state, *options)

        def poll():
            waiting = indexing.message()
            return waiting, gr.Timer(active=not indexing.finished.is_set()), gr.Dropdown(choices=document_choices(pipeline))

        ticker.tick(poll, None, [banner, ticker, source], api_visibility="private")

        def rate(state, note, data: gr.LikeData, request: gr.Request):
            return vote(pipeline, state, note, data.liked, data.index, getattr(request, "username", None))

        running = [question.submit(ask, [question, chatbot, turns, *filters], outputs, **hidden),
                   again.click(ask_again, [chatbot, turns, *filters], outputs, **hidden)]
        running += [b.click(ask, [b, chatbot, turns, *filters], outputs, **hidden) for b in examples]
        stop.click(None, cancels=running, api_visibility="private")
        def forget():
            return [], "", NO_SOURCES, [], ""

        clear.click(forget, None, [*outputs, status], api_visibility="private", cancels=running)
        chatbot.clear(forget, None, [*outputs, status], api_visibility="private", cancels=running)  # its 🗑 icon
        chatbot.like(rate, [turns, comment], [status, comment], api_visibility="private")

        def chat(question: str, history: list[dict] | None = None, speaker: str | None = None,
                 source: str | None = None, k: int | None = None) -> dict:
            """Answer a question (with the conversation so far as [{"role", "content"}, …]); returns
            the answer as `rag ask --json` prints it: text with [n] markers, citations, claims."""
            if waiting := indexing.message():
                raise gr.Error(waiting)
            return chat_api(pipeline, question, history, speaker, source, k)

        gr.api(chat, api_name="chat", **limit)
    return app


def web_auth(pipeline: Pipeline) -> tuple[str, str] | None:
    """RAG_WEB_AUTH=user:pass as Gradio's (user, password)."""
    secret = pipeline.settings.web_auth
    if secret is None:
        return None
    user, sep, password = secret.get_secret_value().partition(":")
    if not sep or not user or not password:
        raise ConfigError("RAG_WEB_AUTH must be user:password.")
    return user, password


def page_options() -> dict:
    """What Gradio 6 takes at launch/mount rather than in Blocks(): theme, CSS, the [n] link script."""
    return dict(theme=THEME, css=CSS, head=HEAD)


def launch(app: gr.Blocks, pipeline: Pipeline, host: str = "127.0.0.1", port: int = 7860, **kwargs) -> gr.Blocks:
    """Start the server: no share link, no SSR/Node, basic auth when RAG_WEB_AUTH is set."""
    app.queue(default_concurrency_limit=concurrency_limit(pipeline))
    app.launch(server_name=host, server_port=port, share=False, ssr_mode=False, auth=web_auth(pipeline),
               footer_links=["api"], **page_options(), **kwargs)
    return app


def mount(fastapi_app, pipeline: Pipeline, path: str = "/chat"):
    """Serve the chat inside your own FastAPI app at `path` (README "Web chat")."""
    app = build_app(pipeline)
    app.queue(default_concurrency_limit=concurrency_limit(pipeline))
    return gr.mount_gradio_app(fastapi_app, app, path=path, auth=web_auth(pipeline), ssr_mode=False,
                               footer_links=["api"], **page_options())
