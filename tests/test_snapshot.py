"""A version's snapshot (`vectorstore.snapshot`) on hand-built rows: written in any order and
loaded memory-mapped in sorted id order; refused when damaged, so the reader reads the store;
never published half-written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vectorstore.snapshot import SnapshotWriter, VersionSnapshot, forget_snapshot

DIM = 4
IDS = ["c3", "a1", "b2", "e5", "d4"]
OWNERS = ["a1", "a1", "c3", "e5", "e5", "e5", "b2"]  # d4 has no windows


def rows() -> tuple[np.ndarray, list[dict], np.ndarray]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(IDS), DIM)).astype(np.float32)
    metadatas = [{"text": f"words of {i}", "turn_index": n, "speaker": ""} for n, i in enumerate(IDS)]
    return vectors, metadatas, rng.standard_normal((len(OWNERS), DIM)).astype(np.float32)


def written(folder: Path) -> VersionSnapshot:
    """The hand-built rows written as an ingest writes them: in batches, in arrival order."""
    vectors, metadatas, windows = rows()
    with SnapshotWriter(folder, IDS, len(OWNERS), DIM) as writer:
        writer.add_windows(OWNERS[:3], windows[:3])
        writer.add(IDS[:2], vectors[:2], metadatas[:2])
        writer.add_windows(OWNERS[3:], windows[3:])
        writer.add(IDS[2:], vectors[2:], metadatas[2:])
        writer.commit()
    return VersionSnapshot.load(folder)


def test_rows_written_in_any_order_load_memory_mapped_in_sorted_id_order(tmp_path):
    snapshot = written(tmp_path / "v1")
    vectors, metadatas, windows = rows()
    assert snapshot.ids == sorted(IDS)
    assert isinstance(snapshot.vectors, np.memmap) and isinstance(snapshot.windows, np.memmap)
    for row, chunk_id in enumerate(snapshot.ids):
        np.testing.assert_array_equal(snapshot.vectors[row], vectors[IDS.index(chunk_id)])
        assert snapshot.metadatas[row] == metadatas[IDS.index(chunk_id)]
    assert [snapshot.ids[r] for r in snapshot.window_rows] == OWNERS
    np.testing.assert_array_equal(snapshot.windows, windows)
    assert [p.name for p in tmp_path.iterdir()] == ["v1"]  # no temporary folder left


def damage(folder: Path, how: str) -> None:
    if how == "vectors cut short":
        (folder / "vectors.f32").write_bytes((folder / "vectors.f32").read_bytes()[:-4])
    elif how == "windows missing":
        (folder / "windows.f32").unlink()
    elif how == "records cut short":
        (folder / "records.json").write_bytes((folder / "records.json").read_bytes()[:-10])
    elif how == "window rows out of range":
        np.save(folder / "window_rows.npy", np.full(len(OWNERS), len(IDS), dtype=np.int64))
    elif how == "no meta":  # a writer killed before its last file (a folder it never renamed)
        (folder / "meta.json").unlink()
    elif how == "older format":
        meta = json.loads((folder / "meta.json").read_text())
        (folder / "meta.json").write_text(json.dumps({**meta, "format": 0}))


@pytest.mark.parametrize("how", ["vectors cut short", "windows missing", "records cut short",
                                 "window rows out of range", "older format", "no meta"])
def test_a_missing_or_damaged_snapshot_is_refused(tmp_path, how):
    written(tmp_path / "v1")
    damage(tmp_path / "v1", how)
    assert VersionSnapshot.load(tmp_path / "v1") is None
    assert VersionSnapshot.load(tmp_path / "missing") is None


def test_a_writer_that_fails_or_misses_a_row_publishes_nothing(tmp_path):
    vectors, metadatas, windows = rows()
    with pytest.raises(RuntimeError), SnapshotWriter(tmp_path / "v1", IDS, len(OWNERS), DIM) as writer:
        writer.add(IDS, vectors, metadatas)
        raise RuntimeError("killed mid-ingest")
    with pytest.raises(ValueError, match="1 chunk"), SnapshotWriter(tmp_path / "v1", IDS, len(OWNERS), DIM) as writer:
        writer.add(IDS[1:], vectors[1:], metadatas[1:])  # a row would score as zeros: refused
        writer.add_windows(OWNERS, windows)
        writer.commit()
    assert list(tmp_path.iterdir()) == []


def test_a_snapshot_saved_over_a_damaged_one_replaces_it(tmp_path):
    good = written(tmp_path / "v1")
    damage(tmp_path / "v1", "vectors cut short")
    VersionSnapshot(good.ids, good.metadatas, np.array(good.vectors), good.window_rows, np.array(good.windows)).save(
        tmp_path / "v1")
    again = VersionSnapshot.load(tmp_path / "v1")
    np.testing.assert_array_equal(again.vectors, good.vectors)


def test_copy_from_a_base_keeps_all_but_the_skipped_chunks_and_their_windows(tmp_path):
    base = written(tmp_path / "v1")
    kept = [i for i in IDS if i != "e5"]
    with SnapshotWriter(tmp_path / "v2", kept, base.kept_windows({"e5"}), DIM) as writer:
        writer.copy_from(base, skip={"e5"})
        writer.commit()
    copy = VersionSnapshot.load(tmp_path / "v2")
    assert copy.ids == sorted(kept) and copy.metadatas == [m for i, m in zip(base.ids, base.metadatas) if i != "e5"]
    assert [copy.ids[r] for r in copy.window_rows] == [o for o in OWNERS if o != "e5"]
    np.testing.assert_array_equal(copy.vectors, base.vectors[[base.ids.index(i) for i in copy.ids]])


def test_forget_deletes_a_snapshot_and_what_killed_writers_left(tmp_path):
    written(tmp_path / "v1")
    SnapshotWriter(tmp_path / "v1", IDS, 0, DIM)  # a writer killed before it committed
    written(tmp_path / "v10")
    forget_snapshot(tmp_path / "v1")
    assert [p.name for p in tmp_path.iterdir()] == ["v10"]
