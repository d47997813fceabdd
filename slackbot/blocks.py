"""Answers as Slack messages: plain functions from the pipeline's JSON (`Answer.to_json()`) to
Block Kit, so tests can call them without Slack.

Every piece of corpus, answer or user text is escaped for mrkdwn (`&`, `<`, `>`): a transcript
or a model that writes `<!channel>` or `<@U…>` must never ping anyone or render a link.
"""

from __future__ import annotations

import html
import re

from rag.answer.answerers import fallback_notice

SECTION_CHARS = 3000  # Slack's limit for a section's text
CONTEXT_CHARS = 2000  # kept well under a context element's limit
MAX_BLOCKS = 50  # per message
NOTIFICATION_CHARS = 3000  # the `text` beside the blocks: notifications, and the thread history we read back
QUOTE_CHARS = 160
TITLE_CHARS = 60
THINKING = "_Searching the interviews…_"
WRITING = "_writing…_"
FEEDBACK_ACTION = re.compile(r"^feedback_(up|down)$")


def escape(text: str) -> str:
    """Text shown literally in mrkdwn: Slack's three control characters as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_BOT_MENTION = "<@{}(?:\\|[^>]*)?>"
_LABELLED = re.compile(r"<[^<>|]*\|([^<>]*)>")  # <http://x|label>, <#C123|general>, <@U1|name>
_SPECIAL = re.compile(r"<!([a-z]+)[^>]*>")  # <!channel>, <!here>, <!subteam^S1>
_BARE = re.compile(r"<([^<>]*)>")  # <@U123>, <#C123>, <http://x>


def from_slack(text: str, bot_user_id: str | None = None) -> str:
    """A Slack message as the plain text a person typed: mentions of the bot dropped, other markup
    (users, channels, links, `<!channel>`) made readable, entities decoded."""
    if bot_user_id:
        text = re.sub(_BOT_MENTION.format(re.escape(bot_user_id)), " ", text)
    text = _SPECIAL.sub(r"@\1", _LABELLED.sub(r"\1", text))
    text = _BARE.sub(r"\1", text)
    return " ".join(html.unescape(text).split())


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def split_escaped(text: str, limit: int = SECTION_CHARS) -> list[str]:
    """`text` escaped, in pieces of at most `limit` characters, cut at a line end, else at a space,
    else anywhere (Chinese has no spaces); never inside an entity."""
    pieces = []
    while text:
        size, end = 0, len(text)
        for i, ch in enumerate(text):
            size += len(escape(ch))
            if size > limit:
                end = i
                break
        cut = end
        if end < len(text):
            cut = max(text.rfind("\n", 0, end), text.rfind(" ", 0, end))
            cut = cut if cut > end // 2 else end
        pieces.append(escape(text[:cut].rstrip()))
        text = text[cut:].lstrip()
    return [piece for piece in pieces if piece]


def pack_lines(lines: list[str], limit: int = SECTION_CHARS) -> list[str]:
    """Lines of mrkdwn (each under `limit`) packed into as few texts of at most `limit` as possible."""
    packed: list[str] = []
    for line in lines:
        if packed and len(packed[-1]) + 1 + len(line) <= limit:
            packed[-1] += "\n" + line
        else:
            packed.append(line)
    return packed


def section(mrkdwn: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def context(mrkdwn: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


def source_line(citation: dict, reader_language: str = "en") -> str:
    """One cited passage, compactly: number, who, which document, the sentence the answer rests on
    (else the passage's opening), for a reader of another language its gist (`rag.ingest.enrichment`);
    marked when it does not back the claim that cites it."""
    who = citation.get("attribution") or citation.get("speaker") or "Unattributed"
    where = shorten(citation.get("title") or citation["source"], TITLE_CHARS)
    line = (f"*[{citation['n']}]* *{escape(who)}* · _{escape(where)}_\n"
            f"> {escape(shorten(citation.get('quote') or citation['text'], QUOTE_CHARS))}")
    if citation.get("gist") and citation.get("language") != reader_language:
        line += f"\n_In short: {escape(shorten(citation['gist'], QUOTE_CHARS))}_"
    if citation.get("supported") is False:
        line += "\n:warning: _This passage does not back the sentence that cites it._"
    return line


def footer(payload: dict) -> str:
    """How the answer was made: the backend (and model), the question as searched when a
    follow-up was rewritten, citations the pipeline removed."""
    backend = payload.get("backend") or "unknown"
    parts = [f"Answered by `{escape(backend)}`" + (f" ({escape(payload['model'])})" if payload.get("model") else "")]
    query = payload.get("query") or {}
    if query.get("rewritten_by"):
        parts.append(f"searched as “{escape(shorten(query['searched'], 300))}”")
    if payload.get("invalid_citations"):
        parts.append("removed citations of passages not given: " + escape(", ".join(payload["invalid_citations"])))
    return shorten(" · ".join(parts), CONTEXT_CHARS)


def feedback_buttons(answer_id: str) -> dict:
    return {"type": "actions", "block_id": "feedback", "elements": [
        {"type": "button", "action_id": f"feedback_{vote}", "value": answer_id,
         "text": {"type": "plain_text", "text": label, "emoji": True}}
        for vote, label in (("up", ":thumbsup: Helpful"), ("down", ":thumbsdown: Not helpful"))]}


def body_blocks(payload: dict) -> list[dict]:
    """The fallback notice, the answer with its [n] markers, then the sources (and claims their
    citation does not back). "Not covered" is the answer text alone."""
    blocks = []
    language = (payload.get("query") or {}).get("language") or "en"
    if payload.get("fallback"):
        blocks.append(context(escape(fallback_notice(payload["fallback"], language))))
    blocks += [section(text) for text in split_escaped(payload["answer"])]
    if not payload["abstained"] and payload["citations"]:
        lines = ["*Sources*", *(source_line(c, language) for c in payload["citations"])]
        lines += [f":warning: _Not backed by its citation:_ {escape(shorten(claim['text'], QUOTE_CHARS))}"
                  for claim in payload.get("claims", []) if claim.get("supported") is False]
        blocks += [section(text) for text in pack_lines(lines)]
    return blocks


def answer_messages(payload: dict, answer_id: str | None = None) -> list[list[dict]]:
    """The answer as Slack messages of at most 50 blocks each; the last ends with the footer and,
    given an id, the thumbs buttons."""
    body = body_blocks(payload)
    closing = [context(footer(payload)), *([feedback_buttons(answer_id)] if answer_id else [])]
    pages = [body[i:i + MAX_BLOCKS] for i in range(0, len(body), MAX_BLOCKS)] or [[]]
    if len(pages[-1]) + len(closing) > MAX_BLOCKS:
        pages.append([])
    pages[-1] += closing
    return pages


def notification_text(payload: dict) -> str:
    """The message's `text`: what notifications show, and what a follow-up reads back as history."""
    return escape(shorten(payload["answer"], NOTIFICATION_CHARS))


def draft_blocks(draft: str) -> list[dict]:
    """A streamed answer so far: its latest section's worth (the final answer is split properly)."""
    pieces = split_escaped(draft)
    return [section(pieces[-1] if pieces else THINKING), context(WRITING)]
