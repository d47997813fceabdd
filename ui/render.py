"""HTML and Markdown for the browser chat, from the pipeline's events and answers.

Everything here renders what the pipeline decided (which passages, which citations, whether they
are supported, why it fell back); nothing re-decides it. All corpus and model text is escaped:
transcripts contain `<`, `**` and `#`, and an LLM's answer is untrusted text.
"""

from __future__ import annotations

import re
from html import escape

from rag.answer.answerers import fallback_notice
from rag.events import Retrieved
from rag.lexicon import topic_terms
from rag.models import Answer, Chunk, Passage, SearchResult
from rag.prompts import load_phrases

LANGUAGE_NAMES = {"en": "English", "zh": "Chinese"}
TITLE_CHARS = 60
_MD_SPECIAL = re.compile(r"([\\`*_<>~|$#\[\]])")
_MARKER = re.compile(r"\\\[(\d+)\\\]")  # an escaped [n]


def escape_markdown(text: str) -> str:
    """Text shown literally in the chat: stray `**`, `#`, `<` or `[x](y)` in a transcript or an
    LLM's answer must not render as markup or links."""
    lines = (re.sub(r"^(\s*\d*)([-+=.)])", r"\1\\\2", _MD_SPECIAL.sub(r"\\\1", line)) for line in text.split("\n"))
    return "\n".join(lines)


def source_anchor(turn: int, n: int) -> str:
    return f"src-{turn}-{n}"


def draft_markdown(text: str) -> str:
    """An answer's text shown literally, except its list lines ("- Amanda Askell: “…” [1]"), which
    stay a list; the translated-sources note becomes a paragraph of its own."""
    note = load_phrases()["en"]["translated_note"]
    if note and text.endswith("\n" + note):
        text = text[: -len(note)] + "\n" + note
    return _MD_SPECIAL.sub(r"\\\1", text)


def answer_markdown(answer: Answer, turn: int, language: str = "en") -> str:
    """The answer as a chat message: each [n] becomes a link to passage n of this turn's sources;
    a rewritten follow-up says how it was searched, a fallback says why (like `rag chat`)."""
    body = _MARKER.sub(lambda m: f"[\\[{m.group(1)}\\]](#{source_anchor(turn, int(m.group(1)))})",
                       draft_markdown(answer.text))
    if answer.fallback:
        body = f"_{escape_markdown(fallback_notice(answer.fallback, language))}_\n\n{body}"
    if answer.query and answer.query.rewritten_by:
        body = f"_(searched as: {escape_markdown(answer.query.question)})_\n\n{body}"
    return body


def search_markdown(result: SearchResult) -> str:
    """Plain search in the chat: the ranked passages, one line each; the panel has them in full."""
    if not result.passages:
        return "No passage matches."
    lines = [f"**{len(result.passages)} passages**, best first (full text in the sources panel):"]
    for p in result.passages:
        preview = " ".join(p.shown_text.split())[:120]
        lines.append(f"{p.rank}. **{escape_markdown(p.chunk.attribution)}** ({p.score:.3f}): {escape_markdown(preview)}…")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- sources panel


def _language(code: str | None) -> str:
    return LANGUAGE_NAMES.get(code or "", code or "?")


def _title(chunk: Chunk) -> str:
    title = chunk.title or chunk.source
    return title if len(title) <= TITLE_CHARS else title[:TITLE_CHARS].rstrip() + "…"


def _highlighted(text: str, sentence: str | None) -> str:
    """Escaped text, paragraphs kept, with `sentence` marked."""
    at = text.find(sentence) if sentence else -1
    if at < 0:
        return escape(text).replace("\n", "<br>")
    before, marked, after = text[:at], text[at : at + len(sentence)], text[at + len(sentence) :]
    return (escape(before) + f"<mark>{escape(marked)}</mark>" + escape(after)).replace("\n", "<br>")


def _who(chunk: Chunk) -> str:
    topics = topic_terms("\n".join(t for t in (chunk.text, chunk.parallel_text) if t))
    about = f' <span class="topics">on {escape(", ".join(topics))}</span>' if topics else ""
    return f"<strong>{escape(chunk.attribution)}</strong>{about}"


def _context(chunks: list[Chunk], language: str) -> str:
    return "".join(f'<p class="ctx"><strong>{escape(c.attribution)}:</strong> {escape(c.text_for(language))}</p>'
                   for c in chunks)


def passage_card(passage: Passage, anchor: str, label: str, language: str, neighbours: tuple[list[Chunk], list[Chunk]],
                 sentence: str | None = None, supported: bool | None = None) -> str:
    """One source: who and on what, where from, the quote (`sentence`, the cited one, marked), the
    English original beside the Chinese for the bilingual file, for an English reader the gist of
    a Chinese passage (`rag.ingest.enrichment`), and the turns around it on request."""
    chunk = passage.chunk
    shown = passage.shown_text or chunk.text
    flag = ('<span class="unsupported" title="The citation check found no support for the sentence citing it">'
            "not supported by this passage</span>") if supported is False else ""
    where = (f'<div class="where">{escape(_title(chunk))} · <code>{escape(chunk.source)}</code> · '
             f"{chunk.char_start}–{chunk.char_end} · {_language(chunk.language)}</div>")
    if chunk.parallel_text:
        original_language = chunk.parallel_language
        texts = [(chunk.text, chunk.language), (chunk.parallel_text, original_language)]
        columns = "".join(
            f'<div class="col" lang="{escape(lang or "")}"><div class="lang">{_language(lang)}'
            f'{" (original)" if lang == original_language else ""}</div>{_highlighted(text, sentence if text == shown else None)}</div>'
            for text, lang in texts)
        quote = f'<div class="quote parallel">{columns}</div>'
    else:
        quote = f'<div class="quote" lang="{escape(chunk.language)}">{_highlighted(shown, sentence)}</div>'
    if chunk.gist and language != chunk.language:
        quote = f'<div class="gist" lang="en">In short: {escape(chunk.gist)}</div>{quote}'
    before, after = neighbours
    context = ""
    if before or after:
        context = (f'<details class="context"><summary>Show context</summary>'
                   f'{_context(before, language)}<p class="ctx here">⋯ this passage ⋯</p>{_context(after, language)}</details>')
    return (f'<div class="source{" flagged" if supported is False else ""}" id="{anchor}">'
            f'<div class="who"><span class="n">{escape(label)}</span> {_who(chunk)} {flag}</div>{where}{quote}{context}</div>')


def _timings(timings: dict[str, float]) -> str:
    return " · ".join(f"{escape(stage.replace('_', ' '))} {ms:.0f} ms" for stage, ms in timings.items())


def how_panel(retrieved: Retrieved, answer: Answer | None) -> str:
    """How the answer was made: the question as searched, the passages with their scores and
    which were cited, the answerer, timings per stage."""
    query = retrieved.query
    rows = []
    searched = escape(query.question)
    if query.rewritten_by:
        searched += f' <span class="note">(follow-up rewritten by {escape(query.rewritten_by)})</span>'
    rows.append(("Searched", searched))
    if query.speaker:
        rows.append(("Speaker", escape(query.speaker) + (" (filter)" if query.speaker_filter else " (named in the question)")))
    if query.source:
        rows.append(("Document", escape(query.source)))
    if query.chinese_terms:
        rows.append(("Expansion terms", escape(", ".join(query.chinese_terms))))
    if query.never_mentioned:
        rows.append(("Never mentioned", escape(", ".join(query.never_mentioned))))
    rows.append(("Confidence", f"{retrieved.result.confidence:.2f}"))
    cited = {c.passage.chunk.id: c.n for c in answer.citations} if answer else {}
    passages = "".join(
        f"<tr><td>{p.rank}</td><td>{escape(p.chunk.attribution)}</td><td><code>{escape(p.chunk.source)}</code></td>"
        f"<td>{p.score:.3f}</td><td>{'[' + str(cited[p.chunk.id]) + ']' if p.chunk.id in cited else ''}</td></tr>"
        for p in retrieved.result.passages)
    if answer:
        rows.append(("Answered by", escape(answer.backend + (f" ({answer.model})" if answer.model else ""))))
        if answer.fallback:
            rows.append(("Fallback", escape(answer.fallback)))
        if answer.invalid_citations:
            rows.append(("Removed citations", escape(", ".join(answer.invalid_citations))))
    timings = answer.timings_ms if answer else retrieved.timings_ms
    rows.append(("Timings", escape(_timings(timings))))
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (f'<details class="how"><summary>How the answer was made</summary><table>{table}</table>'
            f'<table class="passages"><tr><th>#</th><th>who</th><th>document</th><th>score</th><th>cited</th></tr>'
            f"{passages}</table></details>")
