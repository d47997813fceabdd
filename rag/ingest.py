"""Files → index, idempotently.

Chunk ids are content addresses, so ingest only embeds chunks the index does not hold yet and
deletes the chunks a changed file no longer produces. Re-ingesting unchanged files embeds
nothing. A bad file is reported and skipped; the others, and the existing index, are kept.
A chunk's sentence windows are stored before the chunk itself, so an interrupted ingest leaves
no chunk without windows (the next ingest embeds the chunk again). Chunk ids include the
index recipe (`chunking.INDEX_RECIPE`): chunks stored by older code have other ids, and
`reembed_outdated` renews them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from .chunking import chunk_turns, current_id, sentence_windows
from .embeddings import Embedder
from .index import CorpusIndex, searchable_text
from .models import Chunk
from .parsing import IngestError, iter_text_files, parse_file

Progress = Callable[[int, int], None]  # (texts embedded so far, texts to embed): a web page's progress bar


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
    on_progress: Progress | None = None,
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

    _embed_and_store(index, embedder, new, show_progress, on_progress)
    if stale:
        index.store.delete(stale)
    for source in planned:
        index.store.prune_windows(source)
    report.added, report.removed = len(new), len(stale)
    index.refresh()
    return report


def reembed_outdated(index: CorpusIndex, embedder: Embedder, show_progress: bool = True,
                     on_progress: Progress | None = None) -> IngestReport | None:
    """Re-embed the chunks that older code stored (another `INDEX_RECIPE`, so another id).

    They are rebuilt from their own stored fields, so files ingested from anywhere are
    renewed without their paths; returns None when every chunk is current.
    """
    outdated = [c for c in index.chunks.values() if c.id != current_id(c)]
    if not outdated:
        return None
    index.store.check_embedder(embedder.name)
    renewed = [replace(c, id=current_id(c)) for c in outdated]
    _embed_and_store(index, embedder, renewed, show_progress, on_progress)
    index.store.delete([c.id for c in outdated])
    index.refresh()
    return IngestReport(files=sorted({c.source for c in outdated}), added=len(renewed), removed=len(outdated))


def _embed_and_store(index: CorpusIndex, embedder: Embedder, new: list[Chunk], show_progress: bool,
                     on_progress: Progress | None = None) -> None:
    """Embed new chunks and their sentence windows; store the windows first."""
    if not new:
        return
    windows = [(c, w) for c in new for w in sentence_windows(c)]
    total, done = len(new) + len(windows), 0
    with tqdm(total=total, desc="Embedding", unit="passage", disable=not show_progress) as bar:
        def step(count: int) -> None:
            nonlocal done
            done += count
            bar.update(count)
            if on_progress:
                on_progress(done, total)

        window_vectors = embedder.encode_documents([w for _, w in windows], progress=step)
        vectors = embedder.encode_documents([searchable_text(c) for c in new], progress=step)
    index.store.add_windows([owner for owner, _ in windows], window_vectors, [w for _, w in windows])
    index.store.add(new, vectors, [c.text for c in new])
