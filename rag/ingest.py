"""Files → index, idempotently.

Chunk ids are content addresses, so ingest only embeds chunks the index does not hold yet and
deletes the chunks a changed file no longer produces. Re-ingesting unchanged files embeds
nothing. A bad file is reported and skipped; the others, and the existing index, are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from .chunking import chunk_turns
from .embeddings import Embedder
from .index import CorpusIndex, searchable_text
from .models import Chunk
from .parsing import IngestError, iter_text_files, parse_file


@dataclass
class IngestReport:
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    added: int = 0
    removed: int = 0
    unchanged: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.files)} file(s) indexed: {self.added} chunk(s) embedded, "
            f"{self.unchanged} unchanged, {self.removed} removed; {len(self.errors)} file(s) skipped."
        )


def ingest(
    paths: list[Path],
    index: CorpusIndex,
    embedder: Embedder,
    chunk_tokens: int,
    show_progress: bool = True,
) -> IngestReport:
    index.store.claim(embedder.name)
    report = IngestReport()
    planned: dict[str, list[Chunk]] = {}
    for path in paths:
        if not path.exists():
            report.errors.append(f"{path}: no such file or folder; skipped.")
    for path in iter_text_files([p for p in paths if p.exists()]):
        try:
            chunks = chunk_turns(parse_file(path), chunk_tokens)
        except IngestError as exc:
            report.errors.append(str(exc))
            continue
        if path.name in planned:
            report.errors.append(f"{path}: another file named {path.name!r} is in this ingest; skipped.")
            continue
        if not chunks:
            report.errors.append(f"{path}: no text found; skipped.")
            continue
        planned[path.name] = chunks
        report.files.append(str(path))

    new: list[Chunk] = []
    stale: list[str] = []
    for source, chunks in planned.items():
        held = index.store.ids_for_source(source)
        wanted = {c.id for c in chunks}
        new.extend(c for c in chunks if c.id not in held)
        stale.extend(held - wanted)
        report.unchanged += len(held & wanted)

    if new:
        texts = [searchable_text(c) for c in new]
        with tqdm(total=len(texts), desc="Embedding", unit="chunk", disable=not show_progress) as bar:
            vectors = embedder.encode_documents(texts, progress=bar.update)
        index.store.add(new, vectors, [c.text for c in new])
    if stale:
        index.store.delete(stale)
    report.added, report.removed = len(new), len(stale)
    index.refresh()
    return report
