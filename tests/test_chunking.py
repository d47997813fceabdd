"""Turns → chunks: token budgets, one speaker per chunk, offsets, stable ids."""

from __future__ import annotations

import pytest

from rag.ingest.chunking import WINDOW_TOKENS, chunk_turns, count_tokens, sentence_windows
from rag.ingest.parsing import parse_file
from rag.text import comparable, sentences
from tests.conftest import CORPUS_FILES


@pytest.fixture(scope="module")
def chunks_by_file():
    return {p.name: (p.read_text(encoding="utf-8"), chunk_turns(parse_file(p), 300)) for p in CORPUS_FILES}


def test_chunks_respect_the_token_budget(chunks_by_file):
    for name, (_, chunks) in chunks_by_file.items():
        for c in chunks:
            size = max(count_tokens(c.text), count_tokens(c.parallel_text or ""))
            single_pair = c.parallel_text is not None and "\n" not in c.text
            # the one documented exception: a single bilingual pair is never cut in half
            assert size <= 300 or single_pair, (name, size, c.text[:60])


@pytest.mark.parametrize("budget", [200, 600])
def test_budget_is_a_setting(budget):
    turns = parse_file(CORPUS_FILES[2])  # Dario's long turns
    chunks = chunk_turns(turns, budget)
    assert max(count_tokens(c.text) for c in chunks) <= budget
    assert len(chunks) > len(turns) if budget == 200 else len(chunks) >= len(turns)


def test_a_long_turn_is_split_into_balanced_chunks_of_one_speaker(chunks_by_file):
    _, chunks = chunks_by_file["002_536a685dcacd8e2b.txt"]
    by_turn: dict[int, list] = {}
    for c in chunks:
        by_turn.setdefault(c.turn_index, []).append(c)
    long_turn = max(by_turn.values(), key=len)
    assert len(long_turn) >= 4
    assert {c.speaker for c in long_turn} == {"Dario Amodei"}
    sizes = [count_tokens(c.text) for c in long_turn]
    assert min(sizes) >= 0.4 * max(sizes)  # no tiny leftover tail


def test_chunk_text_is_found_at_its_offsets(chunks_by_file):
    for name, (raw, chunks) in chunks_by_file.items():
        for c in chunks:
            window = comparable(raw[c.char_start : c.char_end])
            # paragraph by paragraph: list numbering between paragraphs is not part of the text,
            # and in the bilingual file Chinese and English lines interleave inside the span
            for paragraph in c.text.split("\n") + (c.parallel_text or "").split("\n"):
                assert comparable(paragraph) in window, (name, paragraph[:40])


def test_answers_carry_the_question_as_context_not_as_text(chunks_by_file):
    _, chunks = chunks_by_file["000_55e02b4d6beaaafa.txt"]
    amanda = [c for c in chunks if c.speaker == "Amanda Askell" and c.context]
    assert len(amanda) > 50
    assert all(c.context not in c.text for c in amanda)
    lex = [c for c in chunks if c.speaker == "Lex Fridman"]
    assert any(c.context for c in lex)  # Lex's follow-ups answer Amanda


def test_chunk_ids_are_stable_and_unique(chunks_by_file):
    again = chunk_turns(parse_file(CORPUS_FILES[0]), 300)
    first = chunks_by_file[CORPUS_FILES[0].name][1]
    assert [c.id for c in again] == [c.id for c in first]
    all_ids = [c.id for _, chunks in chunks_by_file.values() for c in chunks]
    assert len(all_ids) == len(set(all_ids))


def test_sentence_windows_cover_the_chunk_in_order_within_the_budget(chunks_by_file):
    chunk = max((c for _, chunks in chunks_by_file.values() for c in chunks), key=lambda c: len(c.text))
    windows = sentence_windows(chunk)
    assert len(windows) > 1
    assert "".join(windows).replace(" ", "") == chunk.text.replace(" ", "").replace("\n", "")
    # over the budget only when one sentence alone is longer
    assert all(count_tokens(w) <= WINDOW_TOKENS or len(sentences(w)) == 1 for w in windows)
