"""Files → speaker turns with offsets.

Three layouts are recognised by their shape, not by file name, so a user's own transcripts work:

- labelled text (markdown articles and plain transcripts): `**Speaker：**`, `**Speaker:**` or
  `Speaker: text` at the start of a line opens a turn that runs to the next label or heading;
  unlabelled text becomes editorial blocks (in articles) or plain paragraphs;
- bilingual pairs: every line labelled, a Chinese line followed by its English original;
  each pair becomes one unit carrying both languages;
- subtitle narration: many short unpunctuated lines from one narrator, attributed to the person
  each part of the script announces.

Boilerplate (WeChat metadata, follow-us banners, images, ads, link lists) never becomes a turn.
"""

from __future__ import annotations

import hashlib
import re
import statistics
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import UserError
from rag.models import EDITORIAL, NARRATOR, NON_PERSON_SPEAKERS, Span, Turn, Unit
from rag.speakers import RESOURCES, SpeakerTable, default_speakers
from rag.text import CJK, clean_with_offsets, detect_language, split_sentences

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}


class IngestError(UserError):
    """A file that cannot be ingested; the message names the file and says why."""


_LABEL_MD = re.compile(r"^\*\*(?P<label>[^*\n]{1,40}?)\s*[:：]\s*\*\*[ \t]*|^\*\*(?P<label2>[^*\n]{1,40}?)\*\*\s*[:：][ \t]*")
_LABEL_PLAIN = re.compile(
    rf"^(?P<label>[A-Z][A-Za-z.'’-]*(?: [A-Z][A-Za-z.'’-]*){{0,3}}|[{CJK}·]{{2,8}})[:：][ \t]+(?=\S)"
)
_HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<text>.*\S)\s*$")
_META = re.compile(r"^\s*(文章作者|发布时间|发布地|原文链接|封面图链接|作者|来源)\s*[:：]")
_FOOTER_HEADING = re.compile(r"往期|推荐阅读|相关阅读|精彩回顾")
_BOILERPLATE = re.compile(r"关注公众号|二维码|阅读约需|素材来源|--END--|联系负责人|点击链接填写")
_URL = re.compile(r"https?://\S+")
_TIMELINE = re.compile(r"^\*\*\d+(?::\d\d){1,2}\*\*")
_LIST_ITEM = re.compile(r"^[ \t]*(?:>[ \t]?)*[ \t]*(?:[*+-]|\d{1,3}[.)])[ \t]+\S")
_RULE = re.compile(r"^\s*(?:\*\s*){3,}$|^\s*(?:-\s*){3,}$")
_ANNOUNCE = re.compile(r"看看|转向|听听|接下来")  # narration cues that introduce the next guest
_WRAP_UP = re.compile(r"以上就是|总结到这里")
_TERMINAL = re.compile(r"[。！？!?.…”\"]$")
# a paragraph that is nothing but a markdown link or image, possibly wrapped over several lines
_LINK_PARAGRAPH = re.compile(r"(?m)^[ \t]*(?:\d+[.、)][ \t]*)?!?\[[^\]]*\]\([^)\s]*\)[ \t]*$")


@dataclass
class _Line:
    text: str
    start: int  # file offset of the line's first character
    number: int  # 1-based


def read_text(path: Path) -> str:
    """The file's text, or an IngestError naming it when it cannot be read or is not UTF-8 text."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot be read ({exc.strerror or exc}); skipped.") from None
    if b"\x00" in data:
        raise IngestError(f"{path}: not a text file (it contains NUL bytes); skipped.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{path}: not UTF-8 text (invalid byte at offset {exc.start}); convert it to UTF-8 and ingest again."
        ) from None


def parse_file(path: Path, speakers: SpeakerTable | None = None) -> list[Turn]:
    if path.suffix.lower() not in TEXT_SUFFIXES:
        raise IngestError(f"{path}: only .txt and .md transcripts can be ingested; skipped.")
    return parse_text(read_text(path), path.name, speakers)


def parse_text(text: str, source: str, speakers: SpeakerTable | None = None) -> list[Turn]:
    speakers = speakers or default_speakers()
    lines = _split_lines(text)
    known = _known_source(text)
    title = known.get("title", source)
    pairs = _bilingual_pairs(lines)
    if pairs:
        fixes = {int(k): v for k, v in known.get("speaker_fixes", {}).items()}
        return _parse_bilingual(pairs, source, title, speakers, fixes)
    if _looks_like_subtitles(lines):
        return _parse_subtitles(lines, source, title, speakers)
    return _parse_labelled(lines, source, speakers)


def _split_lines(text: str) -> list[_Line]:
    out, pos = [], 0
    for number, line in enumerate(text.split("\n"), 1):
        out.append(_Line(line, pos, number))
        pos += len(line) + 1
    return out


def _known_source(text: str) -> dict:
    """What we know about a bundled file (title, speaker corrections), matched by content hash."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    table = tomllib.loads((RESOURCES / "known_sources.toml").read_text(encoding="utf-8"))
    return next((entry for entry in table.get("file", []) if entry["sha256"] == digest), {})


def _units(raw: str, base: int) -> list[Unit]:
    """One paragraph's sentences."""
    clean, offsets = clean_with_offsets(raw, base)
    return [Unit(s.text, s.start, s.end, starts_paragraph=i == 0) for i, s in enumerate(split_sentences(clean, offsets))]


# ---------------------------------------------------------------- labelled text and articles


def _label(line: str) -> tuple[str, int] | None:
    m = _LABEL_MD.match(line)
    if m:
        return (m.group("label") or m.group("label2")).strip(), m.end()
    m = _LABEL_PLAIN.match(line)
    if m:
        return m.group("label").strip(), m.end()
    return None


def _is_boilerplate(line: str) -> bool:
    if _META.match(line) or _BOILERPLATE.search(line) or _RULE.match(line):
        return True
    visible = re.sub(r"[*_>\s\\]", "", line)
    if not visible:
        return False  # blank or markup-only: a paragraph break, not content
    if re.fullmatch(r"(?:\d+[.、)]?)?!?\[.*\]\(.*\)?", visible) or visible.startswith("!["):
        return True  # an image or a link-list item
    urls = sum(len(u) for u in _URL.findall(visible))
    return urls > 0 and urls >= 0.5 * len(visible)


@dataclass
class _Block:
    speaker: str | None
    subject: str | None
    section: str | None
    quoted: bool = False  # a `>` blockquote: an editor's box or translator's note
    paragraphs: list[tuple[int, int, int]] = field(default_factory=list)  # (start, end, content start)


def _parse_labelled(lines: list[_Line], source: str, speakers: SpeakerTable) -> list[Turn]:
    counts: dict[str, int] = {}
    for ln in lines:
        lab = _label(ln.text)
        if lab:
            counts[lab[0]] = counts.get(lab[0], 0) + 1
    labels = {k for k, n in counts.items() if n >= 2}
    is_article = any(_META.match(ln.text) for ln in lines[:20])
    full = "\n".join(ln.text for ln in lines)
    link_lines = {
        ln.number for m in _LINK_PARAGRAPH.finditer(full) for ln in lines if m.start() <= ln.start < m.end()
    }
    unlabelled = EDITORIAL if (is_article or labels) else None

    title = source
    section: str | None = None
    subject: str | None = None
    subject_level = 0
    first_line_of_section = False
    blocks: list[_Block] = []
    current: _Block | None = None
    speaker: str | None = None  # the labelled speaker whose turn is open
    in_paragraph = False

    def open_block(spk: str | None, subj: str | None, quoted: bool = False) -> _Block:
        nonlocal current
        current = _Block(spk, subj, section, quoted)
        blocks.append(current)
        return current

    for ln in lines:
        heading = _HEADING.match(ln.text)
        if heading:
            text = re.sub(r"[*_\\]", "", heading.group("text")).strip()
            if _FOOTER_HEADING.search(text):
                break
            level = len(heading.group("hashes"))
            is_title = title == source
            if is_title:
                title = text
            section = text
            named = [] if is_title else speakers.mentioned(text)  # a title names everyone
            if len(named) == 1:
                subject, subject_level = named[0], level
            elif named or level <= subject_level:
                subject, subject_level = None, 0
            first_line_of_section = True
            speaker, current, in_paragraph = None, None, False
            continue
        if ln.number in link_lines or _is_boilerplate(ln.text):
            in_paragraph = False
            continue
        stripped = ln.text.strip()
        if not re.sub(r"[*_>\s\\]", "", stripped):
            in_paragraph = False
            continue

        lab = _label(ln.text)
        if lab and lab[0] in labels:
            speaker = speakers.canonical_label(lab[0])
            is_person = speaker not in NON_PERSON_SPEAKERS
            open_block(speaker, speaker if is_person else subject)
            content_start = ln.start + lab[1]
            if ln.text[lab[1] :].strip():
                current.paragraphs.append((content_start, ln.start + len(ln.text), content_start))
                in_paragraph = True
            else:
                in_paragraph = False
            first_line_of_section = False
            continue

        if _LIST_ITEM.match(ln.text):
            in_paragraph = False  # each list item is a paragraph of its own
        quoted = stripped.startswith(">")
        named = speakers.mentioned(ln.text)
        announces = len(named) == 1 and (
            first_line_of_section or _TIMELINE.match(stripped) or (len(stripped) <= 40 and _ANNOUNCE.search(stripped))
        )
        if announces and (speaker is None or quoted):
            subject = named[0]
        first_line_of_section = False

        if quoted or speaker is None:
            kind = EDITORIAL if (quoted or unlabelled) else None
            if current is None or (current.speaker, current.subject, current.quoted) != (kind, subject, quoted):
                open_block(kind, subject, quoted)
                in_paragraph = False
        elif current is None or current.speaker != speaker:
            # text after a translator's note resumes the labelled speaker's turn
            open_block(speaker, speaker)
            in_paragraph = False
        if in_paragraph:
            start, _, cstart = current.paragraphs[-1]
            current.paragraphs[-1] = (start, ln.start + len(ln.text), cstart)
        else:
            current.paragraphs.append((ln.start, ln.start + len(ln.text), ln.start))
            in_paragraph = True

    turns: list[Turn] = []
    for block in blocks:
        units: list[Unit] = []
        for _, end, cstart in block.paragraphs:
            units.extend(_units(full[cstart:end], cstart))
        if not units:
            continue
        language = detect_language("".join(u.text for u in units))
        turns.append(
            Turn(source, title, block.speaker, block.subject, language, block.section, tuple(units), len(turns))
        )
    return turns


# ---------------------------------------------------------------- bilingual pairs


def _bilingual_pairs(lines: list[_Line]) -> list[tuple[str, _Line, int, _Line, int]] | None:
    """(label, zh line, zh content offset, en line, en content offset) when the file is paired."""
    content = [ln for ln in lines if ln.text.strip()]
    if len(content) < 8 or len(content) % 2:
        return None
    pairs = []
    for zh, en in zip(content[0::2], content[1::2]):
        lz, le = _label(zh.text), _label(en.text)
        if not lz or not le or lz[0] != le[0]:
            return None
        if detect_language(zh.text[lz[1] :]) != "zh" or detect_language(en.text[le[1] :]) != "en":
            return None
        pairs.append((lz[0], zh, lz[1], en, le[1]))
    return pairs


def _parse_bilingual(pairs, source: str, title: str, speakers: SpeakerTable, fixes: dict[int, str]) -> list[Turn]:
    turns: list[Turn] = []
    run: list[Unit] = []
    run_speaker: str | None = None

    def flush():
        if run:
            turns.append(Turn(source, title, run_speaker, run_speaker, "zh", None, tuple(run), len(turns), "en"))

    for label, zh, zoff, en, eoff in pairs:
        speaker = speakers.canonical_label(fixes.get(zh.number, label))
        zh_clean, zh_pos = clean_with_offsets(zh.text[zoff:], zh.start + zoff)
        en_clean, en_pos = clean_with_offsets(en.text[eoff:], en.start + eoff)
        if not zh_clean or not en_clean:
            continue
        unit = Unit(zh_clean, zh_pos[0], zh_pos[-1] + 1, Span(en_clean, en_pos[0], en_pos[-1] + 1), True)
        if speaker != run_speaker:
            flush()
            run, run_speaker = [], speaker
        run.append(unit)
    flush()
    return turns


# ---------------------------------------------------------------- subtitle narration


def _looks_like_subtitles(lines: list[_Line]) -> bool:
    content = [ln.text.strip() for ln in lines if ln.text.strip()]
    if len(content) < 30 or any(_HEADING.match(t) or _label(t) for t in content):
        return False
    punctuated = sum(bool(_TERMINAL.search(t)) for t in content)
    return statistics.median(len(t) for t in content) <= 30 and punctuated < 0.25 * len(content)


def _parse_subtitles(lines: list[_Line], source: str, title: str, speakers: SpeakerTable, window: int = 3) -> list[Turn]:
    """Join subtitle lines into windows of up to `window` lines; one turn per announced guest."""
    turns: list[Turn] = []
    subject: str | None = None
    units: list[Unit] = []
    pending: list[_Line] = []

    def close_window():
        if pending:
            units.append(
                Unit(" ".join(ln.text.strip() for ln in pending), pending[0].start, pending[-1].start + len(pending[-1].text.rstrip()))
            )
            pending.clear()

    def close_turn():
        close_window()
        if units:
            language = detect_language("".join(u.text for u in units))
            turns.append(Turn(source, title, NARRATOR, subject, language, None, tuple(units), len(turns)))
            units.clear()

    for ln in lines:
        text = ln.text.strip()
        if not text:
            continue
        named = speakers.mentioned(text)
        if len(named) == 1 and _ANNOUNCE.search(text) and named[0] != subject:
            close_turn()
            subject = named[0]
        elif _WRAP_UP.search(text) and subject is not None:
            close_turn()
            subject = None
        lead = ln.text[: len(ln.text) - len(ln.text.lstrip())]
        pending.append(_Line(text, ln.start + len(lead), ln.number))
        if len(pending) >= window or _TERMINAL.search(text):
            close_window()
    close_turn()
    return turns


def iter_text_files(paths: list[Path]) -> list[Path]:
    """Expand folders to the files inside them (sorted, so ingest order is stable).

    Broken and looping symlinks are listed too, so ingest can say why it skips them.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*")
                                if (p.is_file() or p.is_symlink() and not p.is_dir()) and not p.name.startswith(".")))
        else:
            files.append(path)
    return files
