"""A version's rows saved beside the store, so a reader starts by memory-mapping them.

Reading every chunk record and vector of a large index out of Chroma takes tens of seconds (its
`get` turns each stored row into Python objects); the same rows saved as raw float32 matrices
open in milliseconds with `np.memmap`, and the records load as one JSON document. Chroma stays
the store of record: the ingest that writes a version writes its snapshot as the rows arrive,
in a temporary folder renamed into place when complete, so a killed writer never leaves half of
one; a reader that finds none, or a damaged one, reads the store and saves a new one. A
version's name is unique and it never changes once published, so its snapshot stays valid.

A snapshot's chunk rows are in sorted id order, the order readers score them in, so ties rank
the same whichever way the rows were loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .store import Version

FORMAT = 1  # bump when the files change, so older snapshots are read from the store again
_COPY_ROWS = 20_000  # rows copied from a base snapshot per step: bounds what an ingest holds at once


@dataclass
class VersionSnapshot:
    ids: list[str]  # sorted; row i of `vectors` is the chunk ids[i]
    metadatas: list[dict]
    vectors: np.ndarray  # (chunks, dim) float32
    window_rows: np.ndarray  # (windows,) int64: the row in `vectors` of each sentence window's chunk
    windows: np.ndarray  # (windows, dim) float32

    @classmethod
    def read(cls, version: Version) -> "VersionSnapshot":
        """Every row of `version`, read from the store (in pages)."""
        ids, metadatas = version.records()
        order = sorted(range(len(ids)), key=ids.__getitem__)
        ids, metadatas = [ids[i] for i in order], [metadatas[i] for i in order]
        by_id = version.vectors(ids)
        owners, windows = version.window_vectors()
        dim = windows.shape[1] if len(owners) else len(next(iter(by_id.values()), ()))
        vectors = np.stack([by_id[i] for i in ids]) if ids else np.zeros((0, dim), np.float32)
        row = {chunk_id: r for r, chunk_id in enumerate(ids)}
        kept = [w for w, owner in enumerate(owners) if owner in row]
        return cls(ids, metadatas, vectors, np.array([row[owners[w]] for w in kept], dtype=np.int64),
                   windows[kept].reshape(len(kept), dim))

    @classmethod
    def load(cls, folder: Path) -> "VersionSnapshot | None":
        """The snapshot saved in `folder`, memory-mapped, if it is whole; else None (the caller
        reads the store). Not checked against the store: asking Chroma even for a count loads
        the collection, 2 of a 5 s start-up at 100×; a version never changes once published."""
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT:
                return None
            shape = (meta["chunks"], meta["dim"]), (meta["windows"], meta["dim"])
            records = json.loads((folder / "records.json").read_text(encoding="utf-8"))
            snapshot = cls(records["ids"], records["metadatas"], _mapped(folder / "vectors.f32", shape[0]),
                           np.load(folder / "window_rows.npy"), _mapped(folder / "windows.f32", shape[1]))
        except (OSError, ValueError, KeyError, TypeError, EOFError):  # missing, older or damaged
            return None
        chunks = meta["chunks"]
        whole = (len(snapshot.ids) == len(snapshot.metadatas) == chunks
                 and snapshot.window_rows.shape == (meta["windows"],)
                 and (not len(snapshot.window_rows) or 0 <= snapshot.window_rows.min() <= snapshot.window_rows.max()
                      < chunks))
        return snapshot if whole else None

    def save(self, folder: Path) -> None:
        """Write this snapshot to `folder` (replacing a damaged one there)."""
        with SnapshotWriter(folder, self.ids, len(self.window_rows), self.vectors.shape[1]) as writer:
            writer.add(self.ids, self.vectors, self.metadatas)
            writer.add_windows([self.ids[r] for r in self.window_rows], self.windows)
            writer.commit()

    def kept_windows(self, skip: set[str]) -> int:
        """How many sentence windows belong to chunks not in `skip`."""
        return int(np.count_nonzero(self._keep(skip)[self.window_rows]))

    def _keep(self, skip: set[str]) -> np.ndarray:
        return np.array([i not in skip for i in self.ids], dtype=bool)


def _mapped(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A read-only float32 matrix over the file, which must hold exactly `shape`."""
    if path.stat().st_size != shape[0] * shape[1] * 4:
        raise ValueError(f"{path} is not {shape[0]}×{shape[1]} float32 values")
    if not shape[0] or not shape[1]:
        return np.zeros(shape, np.float32)  # mmap refuses an empty file
    return np.memmap(path, dtype="<f4", mode="r", shape=shape)


class SnapshotWriter:
    """Writes a version's snapshot as its rows arrive (an ingest writes them in batches, so memory
    holds one), into a temporary folder that `commit` renames to `folder` once every row is in.
    Leaving the `with` block without `commit` deletes the temporary folder; a killed process
    leaves it for `forget_snapshot` to delete."""

    def __init__(self, folder: Path, ids: list[str], windows: int, dim: int):
        self.folder = folder
        self.dim = dim
        self._row = {chunk_id: r for r, chunk_id in enumerate(sorted(ids))}
        self._metadatas: list[dict | None] = [None] * len(self._row)
        self._window_rows = np.full(windows, -1, dtype=np.int64)
        self._windows_written = 0
        folder.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = folder.parent / f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp"
        self._tmp.mkdir()
        self._vectors = _sized(self._tmp / "vectors.f32", len(self._row) * dim * 4)
        self._windows = _sized(self._tmp / "windows.f32", windows * dim * 4)

    def __enter__(self) -> "SnapshotWriter":
        return self

    def __exit__(self, *exc) -> None:
        for fd in (self._vectors, self._windows):
            os.close(fd)
        shutil.rmtree(self._tmp, ignore_errors=True)  # gone already when committed

    def add(self, ids: list[str], vectors: np.ndarray, metadatas: list[dict]) -> None:
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        for chunk_id, vector, metadata in zip(ids, vectors, metadatas, strict=True):
            row = self._row[chunk_id]
            os.pwrite(self._vectors, vector.tobytes(), row * self.dim * 4)
            self._metadatas[row] = metadata

    def add_windows(self, owner_ids: list[str], vectors: np.ndarray) -> None:
        start, end = self._windows_written, self._windows_written + len(owner_ids)
        self._window_rows[start:end] = [self._row[owner] for owner in owner_ids]
        os.pwrite(self._windows, np.ascontiguousarray(vectors, dtype="<f4").tobytes(), start * self.dim * 4)
        self._windows_written = end

    def copy_from(self, base: VersionSnapshot, skip: set[str]) -> None:
        """The rows of `base` except the chunks in `skip` (and their windows), a slice at a time."""
        keep = base._keep(skip)
        for rows in _slices(np.flatnonzero(keep)):
            self.add([base.ids[r] for r in rows], base.vectors[rows], [base.metadatas[r] for r in rows])
        for windows in _slices(np.flatnonzero(keep[base.window_rows])):
            self.add_windows([base.ids[r] for r in base.window_rows[windows]], base.windows[windows])

    def commit(self) -> None:
        """Publish the snapshot under `folder`; refuses one with a row missing (it would score as zeros)."""
        missing = self._metadatas.count(None)
        if missing or self._windows_written != len(self._window_rows):
            raise ValueError(f"snapshot {self.folder.name}: {missing} chunk(s) and "
                             f"{len(self._window_rows) - self._windows_written} window(s) never written")
        np.save(self._tmp / "window_rows.npy", self._window_rows)
        records = {"ids": sorted(self._row, key=self._row.get), "metadatas": self._metadatas}
        (self._tmp / "records.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        meta = {"format": FORMAT, "chunks": len(self._row), "windows": len(self._window_rows), "dim": self.dim}
        (self._tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")  # last: a folder without it is not one
        shutil.rmtree(self.folder, ignore_errors=True)  # a damaged snapshot a reader could not load
        try:
            os.rename(self._tmp, self.folder)
        except OSError:  # another process saved the same version's snapshot first: keep theirs
            pass


def forget_snapshot(folder: Path) -> None:
    """Delete a version's snapshot and what killed writers left of one."""
    shutil.rmtree(folder, ignore_errors=True)
    for leftover in folder.parent.glob(f".{folder.name}.*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)


def _sized(path: Path, size: int) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.ftruncate(fd, size)
    return fd


def _slices(rows: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(rows), _COPY_ROWS):
        yield rows[start : start + _COPY_ROWS]
