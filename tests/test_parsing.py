"""Files → turns: each bundled format, offsets, boilerplate, attribution, user files, bad files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from rag.models import EDITORIAL, NARRATOR
from rag.ingest.parsing import IngestError, parse_file, parse_text
from rag.settings import BUNDLED_CORPUS
from rag.text import comparable

FILES = {p.name[:3]: p for p in BUNDLED_CORPUS.glob("*.txt")}


def turns_of(key: str):
    return parse_file(FILES[key])


def speech_counts(key: str) -> Counter:
    return Counter(t.speaker for t in turns_of(key))


@pytest.mark.parametrize("key", sorted(FILES))
def test_every_unit_is_found_at_its_offsets(key):
    raw = FILES[key].read_text(encoding="utf-8")
    for turn in turns_of(key):
        for unit in turn.units:
            assert comparable(unit.text) in comparable(raw[unit.start : unit.end]), unit
            if unit.parallel:
                p = unit.parallel
                assert comparable(p.text) in comparable(raw[p.start : p.end]), p
        assert turn.char_start < turn.char_end


def test_lex_amanda_article_turn_counts():
    counts = speech_counts("000")
    assert counts["Lex Fridman"] == 65
    assert counts["Amanda Askell"] == 64


def test_lex_dario_article_turn_counts_and_consecutive_dario_turns_stay_separate():
    counts = speech_counts("002")
    assert counts["Lex Fridman"] == 87
    assert counts["Dario Amodei"] == 87


def test_bilingual_pairs_carry_english_and_fixed_speakers():
    turns = turns_of("001")
    raw = FILES["001"].read_text(encoding="utf-8")
    assert all(t.parallel_language == "en" and t.language == "zh" for t in turns)
    assert sum(len(t.units) for t in turns) == 147  # one unit per Chinese/English pair
    # lines 229-233 are Amanda's 2-5 year prediction although labelled Host
    line_229 = sum(len(line) + 1 for line in raw.split("\n")[:228])
    owner = next(t for t in turns if any(u.start >= line_229 and u.start < line_229 + 200 for u in t.units))
    assert owner.speaker == "Amanda Askell"
    assert "一年就已经模糊" in owner.text


def test_bilingual_without_known_hash_keeps_labels():
    raw = FILES["001"].read_text(encoding="utf-8") + "\n"  # a different file: no corrections apply
    turns = parse_text(raw, "copy.txt")
    assert len(turns) == 104  # 52 per speaker, as labelled
    assert Counter(t.speaker for t in turns) == {"Host": 52, "Amanda Askell": 52}


def test_narration_is_attributed_to_announced_guests():
    turns = turns_of("003")
    assert all(t.speaker == NARRATOR for t in turns)
    subjects = [t.subject for t in turns]
    assert subjects == [None, "Dario Amodei", "Amanda Askell", "Chris Olah", None]
    chris = turns[3].text
    assert "梯度下降" in chris or "叠加" in chris


def test_summary_sections_are_attributed_by_heading_and_first_line():
    turns = turns_of("004")
    by_subject = Counter(t.subject for t in turns)
    assert by_subject["Chris Olah"] >= 1 and by_subject["Amanda Askell"] >= 1
    chris_text = " ".join(t.text for t in turns if t.subject == "Chris Olah")
    assert "叠加" in chris_text and "培育" in chris_text
    assert all(t.speaker == EDITORIAL for t in turns)


@pytest.mark.parametrize("key", ["000", "002", "004"])
def test_boilerplate_is_left_out(key):
    text = " ".join(t.text for t in turns_of(key))
    for junk in ("关注公众号", "mmbiz.qpic.cn", "mp.weixin", "feishu", "往期", "Milo-1101", "文章作者", "二维码"):
        assert junk not in text, junk


def test_article_turns_do_not_contain_labels_or_markup():
    for turn in turns_of("000"):
        assert "**" not in turn.text
        assert not turn.text.startswith(("主持人莱克斯", "阿曼达："))


def test_translator_notes_are_editorial_not_speech():
    notes = [t for t in turns_of("002") if "GTA6 指的是" in t.text]
    assert notes and all(t.speaker == EDITORIAL for t in notes)


def test_user_transcript_with_plain_and_bold_labels(tmp_path: Path):
    path = tmp_path / "chat.md"
    path.write_text(
        "# My podcast\n\nAlice: Hello there. How are you?\n\n**Bob:** Fine, thanks.\nStill fine.\n\n"
        "Alice: Good.\n\n**Bob:** Bye.\n",
        encoding="utf-8",
    )
    turns = parse_file(path)
    assert [t.speaker for t in turns] == ["Alice", "Bob", "Alice", "Bob"]
    assert turns[1].text == "Fine, thanks. Still fine."
    assert turns[0].title == "My podcast"


def test_unlabelled_user_text_becomes_plain_paragraphs(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text("First paragraph here.\n\nSecond one.\n", encoding="utf-8")
    turns = parse_file(path)
    assert turns and all(t.speaker is None for t in turns)
    assert "Second one." in " ".join(t.text for t in turns)


def test_non_utf8_file_is_refused_by_name(tmp_path: Path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Ça va très bien".encode("latin-1"))
    with pytest.raises(IngestError, match="latin1.txt.*not UTF-8"):
        parse_file(path)


def test_binary_and_unsupported_files_are_refused(tmp_path: Path):
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\x00\x01\x02abc")
    with pytest.raises(IngestError, match="blob.txt"):
        parse_file(binary)
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    with pytest.raises(IngestError, match="paper.pdf"):
        parse_file(pdf)
