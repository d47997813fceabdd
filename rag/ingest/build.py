"""Files → index, idempotently and atomically.

Chunk ids are content addresses, so ingest only embeds chunks the index does not hold yet and
drops the chunks a changed file no longer produces. Re-ingesting unchanged files writes nothing.
A change is written to a new version of the store (the current one's kept chunks copied, the new
ones embedded) and published in one step when complete: a reader, or a killed ingest, never
leaves anyone with half an index, and the next ingest drops what a killed one left. What a killed
ingest embedded is not lost, though: new passages are embedded in bounded batches, each committed
to the embedding cache (`vectorstore.embedding_cache`) before the next, and the next ingest takes
them from there.
Stored LLM enrichments of Chinese chunks (`rag.ingest.enrichment`) are attached to the chunks they
belong to on every ingest; with a writer (`rag ingest --enrich`) the missing ones are written
first, before anything is published.
One ingest at a time per data directory (`ingest_lock`).
A file is known by `source_key` (its real path), so same-named files in two folders are two
sources; a file gone from an ingested folder is removed. A bad file is reported and skipped;
the others, and what is already indexed, are kept. Chunk ids include the index recipe
(`chunking.INDEX_RECIPE`): chunks stored by older code have other ids, and `reembed_outdated`
renews them.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rag.errors import UserError
from rag.index.corpus import CorpusIndex, searchable_text
from rag.index.embeddings import Embedder
from rag.ingest.chunking import chunk_turns, current_id, window_texts
from rag.ingest.enrichment import EnrichmentReport, EnrichmentWriter, enrich
from rag.ingest.parsing import IngestError, iter_text_files, parse_file
from rag.models import Chunk, chunk_metadata
from rag.settings import BUNDLED_CORPUS
from vectorstore.store import Version, check_embedder

_BUNDLED = "bundled:"


class IngestBusy(UserError):
    pass


Progress = Callable[[int, int], None]  # (texts embedded so far, texts to embed): a web page's progress bar
BATCH_PASSAGES = 512  # embedded, cached and written to the draft together: bounds memory, and what a kill loses


@dataclass
class IngestReport:
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)  # gone from an ingested folder
    added: int = 0
    removed: int = 0
    unchanged: int = 0
    enrichment: EnrichmentReport | None = None

    def summary(self) -> str:
        parts = [f"{len(self.files)} file(s) indexed: {self.added} chunk(s) embedded, {self.unchanged} unchanged, "
                 f"{self.removed} removed"]
        if self.removed_files:
            parts.append(f"{len(self.removed_files)} file(s) gone from their folder, removed from the index")
        if self.enrichment is not None and (self.enrichment.reused or self.enrichment.written or self.enrichment.failed):
            parts.append(self.enrichment.summary())
        parts.append(f"{len(self.errors)} file(s) skipped.")
        return "; ".join(parts)


@dataclass(frozen=True)
class FileLimits:
    max_bytes: int
    roots: tuple[Path, ...] = ()  # resolved folders a file must be in; empty allows any


def source_key(path: Path) -> str:
    """A resolved file's identity in the index: its path, or `bundled:<name>` for the bundled
    interviews, so every checkout of the project shares their chunks."""
    if path.is_relative_to(BUNDLED_CORPUS):
        return _BUNDLED + path.relative_to(BUNDLED_CORPUS).as_posix()
    return str(path)


def source_file(key: str) -> Path:
    return BUNDLED_CORPUS / key.removeprefix(_BUNDLED) if key.startswith(_BUNDLED) else Path(key)


@contextmanager
def ingest_lock(data_dir: Path, wait: bool) -> Iterator[None]:
    """Hold the data directory's ingest lock; `wait=False` refuses at once when another holds it.

    An flock: the kernel releases it when its holder dies, SIGKILL included, so it never sticks.
    """
    path = data_dir / "ingest.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise IngestBusy(f"Another ingest is running ({holder}); run this one again when it has finished.") from None
        lock.truncate(0)
        lock.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        lock.flush()
        try:
            yield
        finally:
            lock.truncate(0)


def ingest(
    paths: list[Path],
    index: CorpusIndex,
    embedder: Embedder,
    chunk_tokens: int,
    limits: FileLimits,
    show_progress: bool = True,
    rebuild: bool = False,
    on_progress: Progress | None = None,
    writer: EnrichmentWriter | None = None,
) -> IngestReport:
    """Index `paths`; with `rebuild`, the new version holds only them (its vectors from the embedding
    cache where it has them, which is then pruned to them). With a `writer`, Chinese chunks
    without a stored enrichment get one first."""
    started = time.time()
    index.sync()
    if index.version is not None and not rebuild:
        check_embedder(index.version, embedder.name)
    report = IngestReport()
    planned, seen, folders = _read(paths, chunk_tokens, limits, report)
    if index.enrichments is not None:
        read = [c for chunks in planned.values() for c in chunks]
        enriched, report.enrichment = enrich(read, index.enrichments, writer, show_progress)
        by_id = {c.id: e for c, e in zip(read, enriched)}
        planned = {key: [by_id[c.id] for c in chunks] for key, chunks in planned.items()}

    held: dict[str, set[str]] = {}
    for chunk in ({} if rebuild else index.chunks).values():
        held.setdefault(chunk.source_path, set()).add(chunk.id)
    new: list[Chunk] = []
    stale: set[str] = set()
    for key, chunks in planned.items():
        have, wanted = held.get(key, set()), {c.id for c in chunks}
        new.extend(c for c in chunks if c.id not in have)
        stale |= have - wanted
        report.unchanged += len(have & wanted)
    for key in sorted(held):
        if key not in seen and any(source_file(key).is_relative_to(folder) for folder in folders):
            stale |= held[key]
            report.removed_files.append(str(source_file(key)))
    report.added, report.removed = len(new), len(stale)
    if rebuild and not planned:
        report.errors.append("Nothing readable to rebuild from; the index was left as it was.")
    elif rebuild or new or stale:
        _publish(index, embedder, new, stale, show_progress, base=None if rebuild else index.version,
                 on_progress=on_progress)
        if rebuild and index.embedding_cache is not None:
            index.embedding_cache.forget_unused_since(started)
    index.forget_derived(index.store.collect_garbage())  # what a killed ingest left too
    return report


def _read(paths: list[Path], chunk_tokens: int, limits: FileLimits,
          report: IngestReport) -> tuple[dict[str, list[Chunk]], set[str], list[Path]]:
    """Chunks of each readable file by source key, the keys of every file met, and the folders walked."""
    planned: dict[str, list[Chunk]] = {}
    seen: set[str] = set()
    folders: list[Path] = []
    for path in paths:
        try:
            resolved = _resolve(path, limits)
        except IngestError as exc:
            report.errors.append(str(exc))
            continue
        if resolved.is_dir():
            folders.append(resolved)
        for file in iter_text_files([resolved]):
            try:
                real = _resolve(file, limits)
                key = source_key(real)
                seen.add(key)
                chunks = chunk_turns(parse_file(_check_size(real, limits)), chunk_tokens, key)
            except IngestError as exc:
                report.errors.append(str(exc))
                continue
            if not chunks:
                report.errors.append(f"{file}: no text found; skipped.")
                continue
            planned[key] = chunks
            report.files.append(str(file))
    return planned, seen, folders


def _resolve(path: Path, limits: FileLimits) -> Path:
    """The real path, refused when it is missing, a symlink loop or outside the allowed roots."""
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        raise IngestError(f"{path}: no such file or folder (or a broken link); skipped.") from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise IngestError(f"{path}: cannot be resolved ({exc}); skipped.") from None
    if limits.roots and not any(real.is_relative_to(root) for root in limits.roots):
        raise IngestError(f"{path}: outside the folders ingest may read (RAG_INGEST_ROOTS); skipped.")
    return real


def _check_size(path: Path, limits: FileLimits) -> Path:
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise IngestError(f"{path}: {size / 1e6:.0f} MB is over the {limits.max_bytes / 1e6:g} MB limit "
                          "(RAG_MAX_FILE_MB); skipped.")
    return path


def outdated(index: CorpusIndex) -> list[Chunk]:
    """Chunks that older code stored (another `INDEX_RECIPE`, so another id)."""
    return [c for c in index.chunks.values() if c.id != current_id(c)]


def reembed_outdated(index: CorpusIndex, embedder: Embedder, show_progress: bool = True,
                     on_progress: Progress | None = None) -> IngestReport | None:
    """Re-embed the `outdated` chunks; None when every chunk is current.

    They are rebuilt from their own stored fields, so files ingested from anywhere are
    renewed without their paths.
    """
    index.sync()
    old = outdated(index)
    if not old:
        return None
    check_embedder(index.version, embedder.name)
    renewed = [replace(c, id=current_id(c)) for c in old]
    _publish(index, embedder, renewed, {c.id for c in old}, show_progress, base=index.version, on_progress=on_progress)
    index.forget_derived(index.store.collect_garbage())
    return IngestReport(files=sorted({c.source for c in old}), added=len(renewed), removed=len(old))


def _publish(index: CorpusIndex, embedder: Embedder, new: list[Chunk], stale: set[str], show_progress: bool,
             base: Version | None, on_progress: Progress | None = None) -> None:
    """Write a new version: `base` without the `stale` chunks, plus the `new` ones embedded; then switch to it.

    The new chunks go in batches of about `BATCH_PASSAGES` passages (a chunk and its windows),
    each embedded, committed to the embedding cache, then written to the draft and its snapshot,
    so memory holds one batch of vectors and a killed ingest has cached all but its last batch.
    The draft's BM25 indexes and snapshot are saved before it is published: readers only load them.
    """
    kept = {} if base is None else {i: c for i, c in index.chunks.items() if i not in stale}
    windows = [window_texts(c) for c in new]
    total, done = len(new) + sum(map(len, windows)), 0
    draft = index.store.draft(embedder.name)
    snapshot_windows = total - len(new) + (0 if base is None else index.snapshot.kept_windows(stale))
    with (index.snapshot_writer(draft.name, [*kept, *(c.id for c in new)], snapshot_windows, embedder.dim) as snapshot,
          tqdm(total=total, desc="Embedding", unit="passage", disable=not show_progress) as bar):
        if base is not None:
            draft.copy_from(base, skip=stale)
            snapshot.copy_from(index.snapshot, skip=stale)

        def step(count: int) -> None:
            nonlocal done
            done += count
            bar.update(count)
            if on_progress:
                on_progress(done, total)

        for batch in _batches(windows):
            chunks = [new[i] for i in batch]
            owned = [(c.id, w) for c, i in zip(chunks, batch) for w in windows[i]]
            vectors = _embed(index, embedder, [w for _, w in owned] + [searchable_text(c) for c in chunks], step)
            owners, metadatas = [owner for owner, _ in owned], [chunk_metadata(c) for c in chunks]
            draft.add_windows(owners, vectors[: len(owned)], [w for _, w in owned])
            snapshot.add_windows(owners, vectors[: len(owned)])
            draft.add([c.id for c in chunks], vectors[len(owned) :], [c.text for c in chunks], metadatas)
            snapshot.add([c.id for c in chunks], vectors[len(owned) :], metadatas)
        index.lexical_for(draft.name, kept | {c.id: c for c in new})
        snapshot.commit()
    index.store.publish(draft)
    index.sync()


def _batches(windows: list[list[str]]) -> Iterator[list[int]]:
    """Consecutive chunk positions holding about `BATCH_PASSAGES` passages (each chunk + its windows)."""
    batch: list[int] = []
    size = 0
    for i, own in enumerate(windows):
        batch.append(i)
        size += 1 + len(own)
        if size >= BATCH_PASSAGES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _embed(index: CorpusIndex, embedder: Embedder, texts: list[str], progress: Callable[[int], None]) -> np.ndarray:
    """Vectors of `texts`: from the embedding cache when there, else embedded and cached."""
    cache = index.embedding_cache
    cached = cache.get(embedder.name, texts) if cache is not None else {}
    progress(len(cached))
    missing = [i for i in range(len(texts)) if i not in cached]
    vectors = np.empty((len(texts), embedder.dim), dtype=np.float32)
    for i, vector in cached.items():
        vectors[i] = vector
    if missing:
        vectors[missing] = embedder.encode_documents([texts[i] for i in missing], progress=progress)
        if cache is not None:
            cache.put(embedder.name, [texts[i] for i in missing], vectors[missing])
    return vectors
