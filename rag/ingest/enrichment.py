"""Index-time enrichment (`rag ingest --enrich`): for each Chinese chunk, the configured LLM writes
a one-line English gist and a few English questions the chunk answers, once; they are stored by
the chunk's content (`vectorstore.enrichment_store`) and indexed with it.

Why: English questions about passages that exist only in Chinese are where retrieval misses
most; the glossary bridge translates words, not the way a listener asks. How it reaches
retrieval, as extra passages pointing at the chunk rather than text appended to it:
- dense: each question and the gist is embedded on its own as one of the chunk's windows
  (`chunking.window_texts`), and a chunk scores its best window, so an English question meets a
  short English sentence of the same shape, while the chunk's own vector stays its Chinese
  words and Chinese questions rank as before (appended to a 300-token chunk, three short
  questions would be diluted, and would dilute it);
- lexical: a BM25 index of its own over the enrichment (`CorpusIndex.enriched`), searched with
  an English question's words and fused with its own weight. In the chunk's own BM25 document
  the English words would stop counting as words only the bilingual file has (down-weighted so
  that English questions don't drift to that file), changing every English question's weights.
The gist is also shown to English readers beside a Chinese source (web chat, Slack, `gist` in
the JSON). The bilingual transcript is skipped: it has its English original.

A chunk the LLM fails on (error, timeout, a reply with no English gist or question) is indexed
without and tried again by the next `--enrich`; after a few failures in a row the rest waits for
the next run too (a server that is down would otherwise cost a timeout per chunk). Every ingest,
with or without `--enrich` or an LLM, attaches what is stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, replace

from tqdm import tqdm

from rag.ingest.chunking import current_id
from rag.llm.backends import ChatBackend, within
from rag.models import Chunk
from rag.prompts import load_prompt
from rag.text import detect_language
from vectorstore.enrichment_store import EnrichmentStore

log = logging.getLogger(__name__)

MAX_QUESTIONS = 3
GIVE_UP_AFTER = 3  # failures in a row: the server is down or too slow for this corpus now
_MAX_TOKENS = 200  # four short lines; a model that rambles is cut off
_MAX_LINE_CHARS = 300
_LINE = re.compile(r"^[\W\d]*(gist|q(?:uestion)?\s*\d*)\s*[:：.)]\s*(.+)$", re.I)
_NAME_LABEL = re.compile(r"^[^:：]{1,40}[:：]\s*")  # "Amanda Askell: " before an unlabelled line


def needs_english(chunk: Chunk) -> bool:
    """Chinese text with no English of its own (the bilingual transcript has its original)."""
    return chunk.language == "zh" and not chunk.parallel_text


def content_key(chunk: Chunk) -> str:
    """What the LLM is shown of the chunk, hashed: a changed passage gets a new key, a moved one keeps it."""
    blob = json.dumps([chunk.attribution, chunk.title, chunk.text], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def parse_enrichment(reply: str) -> dict | None:
    """{"gist": str, "questions": [str]} from the model's labelled lines (English only), or None
    when it wrote neither a gist nor a question. A small model sometimes labels the gist with
    the speaker's name instead ("Amanda Askell: …"): with questions written, the first other English
    line is the gist then (without them it is likely a refusal or chatter)."""
    gist, unlabelled, questions = "", "", []
    for line in reply.splitlines():
        match = _LINE.match(line.strip())
        label, text = (match.group(1).lower(), match.group(2)) if match else ("", _NAME_LABEL.sub("", line.strip()))
        text = " ".join(text.split()).strip("\"*' ")
        if not text or len(text) > _MAX_LINE_CHARS or detect_language(text) != "en":
            continue
        if label == "gist":
            gist = gist or text
        elif label:
            questions += [text] if text not in questions else []
        else:
            unlabelled = unlabelled or text
    gist = gist or (unlabelled if questions else "")
    return {"gist": gist, "questions": questions[:MAX_QUESTIONS]} if gist or questions else None


def with_enrichment(chunk: Chunk, record: dict) -> Chunk:
    enriched = replace(chunk, gist=record["gist"], questions=tuple(record["questions"]))
    return replace(enriched, id=current_id(enriched))


class EnrichmentWriter:
    """One LLM call per chunk (`prompts/enrich.toml`), bounded by `timeout` seconds."""

    def __init__(self, backend: ChatBackend, timeout: float):
        self.backend = backend
        self.timeout = timeout

    def write(self, chunk: Chunk) -> dict:
        """The chunk's enrichment; raises on a failure, a timeout or an unusable reply."""
        messages = load_prompt("enrich").messages(speaker=chunk.attribution, title=chunk.title, passage=chunk.text)
        try:
            reply = within(self.timeout, lambda: "".join(self.backend.stream(messages, max_tokens=_MAX_TOKENS)))
        except TimeoutError:
            raise TimeoutError(f"no reply within {self.timeout:g} s (RAG_LLM_ENRICH_TIMEOUT)") from None
        record = parse_enrichment(reply)
        if record is None:
            raise ValueError(f"a reply with no English gist or question: {reply[:80]!r}")
        return record


@dataclass
class EnrichmentReport:
    reused: int = 0  # Chinese chunks given what an earlier run stored
    written: int = 0  # … written by the LLM in this run
    failed: int = 0  # the LLM failed on them: indexed without, tried again next time
    without: int = 0  # Chinese chunks indexed without an enrichment
    stopped: str | None = None  # why writing stopped before the end

    def summary(self) -> str:
        parts = [f"{self.written} written now", f"{self.reused} reused"]
        if self.failed:
            parts.append(f"{self.failed} failed (indexed without, tried again next time)")
        parts.append(f"{self.without} Chinese chunk(s) without")
        text = "enrichment: " + ", ".join(parts)
        if self.stopped:
            text += f"; {self.stopped}"
        elif self.without and (self.reused or self.written):
            text += ("; a partly enriched index favours its enriched chunks over the others (README, \"Quality\"): "
                     "run `rag ingest --enrich` to finish")
        return text


def enrich(chunks: list[Chunk], store: EnrichmentStore, writer: EnrichmentWriter | None,
           show_progress: bool = True) -> tuple[list[Chunk], EnrichmentReport]:
    """`chunks` with their stored enrichments attached, in order; with a `writer`, the missing
    ones are written first, each stored as soon as it is written."""
    keys = {c.id: content_key(c) for c in chunks if needs_english(c)}
    stored = store.get(sorted(set(keys.values())))
    report = EnrichmentReport(reused=sum(key in stored for key in keys.values()))
    if writer is not None:
        missing = {key: c for c in chunks if (key := keys.get(c.id)) is not None and key not in stored}
        _write(list(missing.items()), store, writer, stored, report, show_progress)
    attached = [with_enrichment(c, stored[keys[c.id]]) if keys.get(c.id) in stored else c for c in chunks]
    report.written = sum(1 for key in keys.values() if key in stored) - report.reused
    report.without = len(keys) - report.reused - report.written
    return attached, report


def _write(todo: list[tuple[str, Chunk]], store: EnrichmentStore, writer: EnrichmentWriter, stored: dict[str, dict],
           report: EnrichmentReport, show_progress: bool) -> None:
    in_a_row = 0
    with tqdm(total=len(todo), desc="Enriching", unit="chunk", disable=not show_progress) as bar:
        for key, chunk in todo:
            try:
                record = writer.write(chunk)
            except Exception as exc:  # one chunk's failure must not cost the ingest
                report.failed += 1
                in_a_row += 1
                reason = str(exc) or type(exc).__name__
                log.warning("enrichment of %s [%d:%d] failed: %s", chunk.source, chunk.char_start, chunk.char_end, reason)
                if in_a_row >= GIVE_UP_AFTER:
                    report.stopped = (f"stopped after {in_a_row} failures in a row (last: {reason}); "
                                      "run `rag ingest --enrich` again for the rest")
                    return
            else:
                in_a_row = 0
                store.put(key, {**record, "model": writer.backend.model})
                stored[key] = record
            bar.update(1)
