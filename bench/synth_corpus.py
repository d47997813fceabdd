"""Synthetic interview corpora N times the bundled one, for measuring how cost grows with size.

    python bench/synth_corpus.py --scale 10 --out /tmp/corpus-10x [--seed 13]

Real sentences of the bundled interviews, re-mixed: each file is a new conversation between a
new host and a new guest (generated names), whose turns are drawn, sentence by sentence, from
the corpus's speech turns, with turn lengths drawn from the real ones. Two of every three files
are Chinese articles in the layout of 000/002 (`**主持人某某：**` labels on their own line); the
third is a bilingual transcript in the layout of 001 (each Chinese line followed by its English
original under the same `**Name:**` label), built from the real sentence pairs so the two
languages stay aligned. Narration scripts are not imitated.

Deterministic: file i depends only on the seed and i, so the 3× corpus is the first files of
the 10× one. The corpus's size is measured in characters against the bundled files'.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "明华强伟芳娜敏静丽军洋勇艳杰娟涛超秀霞平刚桂英玉兰萍鹏宇浩然晨曦子涵思远嘉怡俊"
ENGLISH_FIRST = ["Avery", "Blake", "Casey", "Devon", "Emery", "Finley", "Harper", "Jordan", "Kendall", "Logan",
                 "Morgan", "Parker", "Quinn", "Reese", "Rowan", "Sawyer", "Taylor", "Wren"]
ENGLISH_LAST = ["Abbott", "Barlow", "Carver", "Dalton", "Ellison", "Fenwick", "Garner", "Hollis", "Ingram",
                "Keller", "Lowell", "Mercer", "Norwood", "Prescott", "Radley", "Sutton", "Thorne", "Whitlock"]


@dataclass(frozen=True)
class Pool:
    """What files are re-mixed from: real sentences, sentence pairs, and turn lengths."""

    host_sentences: list[str]  # interviewers' Chinese sentences
    guest_sentences: list[str]  # guests' Chinese sentences
    pairs: list[tuple[str, str]]  # (Chinese, English) sentences of the bilingual transcript
    turn_lengths: list[int]  # sentences per real speech turn
    file_chars: int  # mean characters of a bundled file
    corpus_chars: int


def read_pool() -> Pool:
    from rag.models import NON_PERSON_SPEAKERS
    from rag.ingest.parsing import iter_text_files, parse_file
    from rag.settings import BUNDLED_CORPUS

    files = sorted(p for p in iter_text_files([BUNDLED_CORPUS]) if p.is_file())
    hosts, guests, pairs, lengths = [], [], [], []
    for path in files:
        turns = [t for t in parse_file(path) if t.speaker and t.speaker not in NON_PERSON_SPEAKERS]
        for turn in turns:
            lengths.append(len(turn.units))
            asks = turn.speaker in {"Lex Fridman", "Host"}
            for unit in turn.units:
                (hosts if asks else guests).append(unit.text)
                if unit.parallel:
                    pairs.append((unit.text, unit.parallel.text))
    chars = sum(len(p.read_text(encoding="utf-8")) for p in files)
    return Pool(hosts, guests, pairs, lengths, chars // len(files), chars)


def chinese_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))


def synthetic_file(pool: Pool, seed: int, number: int) -> str:
    """File `number` of the corpus of `seed`: a title, then alternating host and guest turns."""
    rng = random.Random(f"{seed}:{number}")
    bilingual = number % 3 == 2
    if bilingual:
        host, guest = "Host", f"{rng.choice(ENGLISH_FIRST)} {rng.choice(ENGLISH_LAST)}"
        lines = [f"**{host}:** 欢迎来到第 {number} 期答疑。", f"**{host}:** Welcome to office hours number {number}."]
    else:
        host, guest = chinese_name(rng), chinese_name(rng)
        lines = [f"# 合成访谈第{number}期：{host}对话{guest}", "", "## 访谈全文记录", ""]
    size = sum(map(len, lines))
    asking = True
    while size < pool.file_chars:
        count = rng.choice(pool.turn_lengths)
        if bilingual:
            start = rng.randrange(len(pool.pairs))
            speaker = host if asking else guest
            for zh, en in (pool.pairs[(start + i) % len(pool.pairs)] for i in range(count)):
                lines += [f"**{speaker}:** {zh}", f"**{speaker}:** {en}"]
        else:
            sentences = rng.choices(pool.host_sentences if asking else pool.guest_sentences, k=count)
            lines += [f"**{'主持人' + host if asking else guest}：**", "".join(sentences), ""]
        size = sum(map(len, lines))
        asking = not asking
    return "\n".join(lines) + "\n"


def write_corpus(scale: float, out: Path, seed: int = 13) -> list[Path]:
    """Files totalling `scale` times the bundled corpus's characters (the first ones are the same for any scale)."""
    pool = read_pool()
    out.mkdir(parents=True, exist_ok=True)
    paths, chars, number = [], 0, 0
    while chars < scale * pool.corpus_chars:
        text = synthetic_file(pool, seed, number)
        path = out / f"synthetic_{number:04d}.md"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
        chars += len(text)
        number += 1
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, required=True, help="times the bundled corpus, in characters")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    paths = write_corpus(args.scale, args.out, args.seed)
    print(f"{len(paths)} files, {sum(p.stat().st_size for p in paths) / 1e6:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
