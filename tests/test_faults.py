"""Faults with real processes: SIGKILL mid-rebuild, two ingests at once, readers in other processes
(the Python API the web app and eval use, and a long-running `rag search -`) during an ingest,
a corrupted store, a Chroma server that is down.

A small hand-made corpus keeps each ingest to a few seconds of embedding.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import chromadb
import pytest

from rag.errors import UserError
from rag.factory import build_pipeline
from rag.settings import Settings
from tests.conftest import free_port
from tests.llm_servers import SilentServer
from vectorstore import chroma
from vectorstore.chroma import ChromaStore
from vectorstore.snapshot import VersionSnapshot
from vectorstore.store import StoreError

TOPICS = ["sycophancy", "interpretability", "scaling laws", "constitutional AI", "model welfare", "red teaming",
          "honesty", "character training", "mechanistic circuits", "responsible scaling"]
QUESTIONS = "What did Alice say about sycophancy?\nWhy does red teaming matter?\nWhat is talk 2 about?\n"


def write_talks(folder: Path, talks: int = 3, turns: int = 24) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for talk in range(talks):
        lines = [f"{'Alice' if t % 2 == 0 else 'Bob'}: Point {t} of talk {talk} is about "
                 f"{TOPICS[(talk * turns + t) % len(TOPICS)]}, and why it matters for model {t * 7 + talk}."
                 for t in range(turns)]
        (folder / f"talk{talk}.md").write_text("\n\n".join(lines) + "\n", encoding="utf-8")


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "RAG_DATA_DIR": str(data_dir), "RAG_EMBEDDER_THREADS": "1", **extra}


def rag(args: list[str], env: dict, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag", *args], env=env, input=stdin, capture_output=True, text=True,
                          timeout=300)


def start_rag(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rag", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def answers(env: dict) -> list[dict]:
    """The answers a fresh process gives (timings and request ids aside), read from the store on disk."""
    out = rag(["ask", "-", "--json"], env, stdin=QUESTIONS)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    for line in lines:
        line.pop("timings_ms")
        line.pop("request_id")
    return lines


def version_collections(data_dir: Path) -> set[str]:
    client = chromadb.PersistentClient(path=str(data_dir / "index"))
    return {c.name.removesuffix(".windows") for c in client.list_collections()} - {"interviews.pointer"}


def forget_embeddings(data_dir: Path) -> None:
    """Delete the embedding cache (always safe), so the next rebuild embeds again and takes seconds."""
    (data_dir / "embeddings.sqlite").unlink(missing_ok=True)


@pytest.fixture
def indexed(tmp_path: Path) -> tuple[Path, dict]:
    corpus = tmp_path / "corpus"
    write_talks(corpus)
    env = env_for(tmp_path / "data", RAG_CORPUS=json.dumps([str(corpus)]))
    out = rag(["ingest", "--quiet"], env)
    assert out.returncode == 0, out.stderr
    return tmp_path / "data", env


def test_sigkill_at_any_moment_of_a_rebuild_keeps_the_same_answers_and_the_next_ingest_cleans_up(indexed):
    data_dir, env = indexed
    before = answers(env)
    assert any(a["citations"] for a in before)
    drafts_left = 0
    for delay in (0.5, 3.0, 5.0, 7.0):  # start-up, reading, embedding, writing the draft
        forget_embeddings(data_dir)
        rebuild = start_rag(["ingest", "--rebuild", "--quiet"], env)
        time.sleep(delay)
        rebuild.send_signal(signal.SIGKILL)
        rebuild.wait(timeout=30)
        drafts_left += len(version_collections(data_dir)) > 1
        assert answers(env) == before
        assert all(snapshots(data_dir).values()), "a half-written snapshot was published"
    assert drafts_left, "no kill landed while a draft was being written"

    out = rag(["ingest", "--rebuild", "--quiet"], env)
    assert out.returncode == 0, out.stderr
    assert answers(env) == before
    assert len(version_collections(data_dir)) == 2  # the new version and the one before it, no drafts
    assert set(snapshots(data_dir)) == version_collections(data_dir)  # and no snapshot but theirs
    assert not [p for p in (data_dir / "snapshots").iterdir() if p.name.startswith(".")]  # nor a killed one's


def snapshots(data_dir: Path) -> dict[str, bool]:
    """Each published snapshot's version, and whether it loads whole."""
    return {folder.name: VersionSnapshot.load(folder) is not None
            for folder in (data_dir / "snapshots").iterdir() if not folder.name.startswith(".")}


def test_a_second_ingest_is_refused_while_one_runs_and_the_lock_does_not_outlive_a_killed_holder(indexed):
    data_dir, env = indexed
    forget_embeddings(data_dir)
    first = start_rag(["ingest", "--rebuild", "--quiet"], env)
    deadline = time.monotonic() + 60
    while "pid" not in (data_dir / "ingest.lock").read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    second = rag(["ingest", "--rebuild", "--quiet"], env)
    assert second.returncode == 1
    assert f"Another ingest is running (pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    third = rag(["ingest", "--rebuild", "--quiet"], env)
    assert third.returncode == 0, third.stderr


READER = textwrap.dedent("""
    import json, sys, time
    from rag.factory import build_pipeline
    pipe = build_pipeline()
    deadline = time.monotonic() + 240
    searches = 0
    while time.monotonic() < deadline:
        sources = {p.chunk.source for p in pipe.search("zebrafish migration", k=3).passages}
        searches += 1
        if "zebra.md" in sources:
            print(json.dumps({"searches": searches, "saw": "zebra.md"}))
            sys.exit(0)
    sys.exit("never saw the new file")
""")


def cli_search(reader: subprocess.Popen) -> set[str]:
    """The sources a running `rag search - --json` returns for the new file's topic."""
    reader.stdin.write("zebrafish migration\n")
    reader.stdin.flush()
    return {p["source"] for p in json.loads(reader.stdout.readline())["passages"]}


def test_readers_in_three_processes_keep_answering_during_an_ingest_and_pick_it_up_without_restart(indexed, tmp_path):
    _, env = indexed
    api_readers = [subprocess.Popen([sys.executable, "-c", READER], env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(2)]
    cli_reader = subprocess.Popen([sys.executable, "-m", "rag", "search", "-", "-k", "3", "--json"], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    extra = tmp_path / "extra"
    write_talks(extra, talks=2)
    (extra / "zebra.md").write_text("Carol: Zebrafish migration is what the new talk is about.\n\nDan: Zebrafish?\n",
                                    encoding="utf-8")
    assert "zebra.md" not in cli_search(cli_reader)
    ingesting = start_rag(["ingest", str(extra), "--quiet"], env)
    deadline = time.monotonic() + 240
    while "zebra.md" not in cli_search(cli_reader):
        assert time.monotonic() < deadline, "the CLI reader never saw the new file"
    assert ingesting.wait(timeout=240) == 0, ingesting.stderr.read()
    cli_reader.stdin.close()
    assert cli_reader.wait(timeout=30) == 0, cli_reader.stderr.read()
    for reader in api_readers:
        stdout, stderr = reader.communicate(timeout=240)
        assert reader.returncode == 0, stderr
        assert json.loads(stdout)["searches"] >= 1


def test_a_corrupted_store_is_one_line_naming_it_and_exit_1_and_doctor_says_so(indexed):
    data_dir, env = indexed
    healthy = rag(["doctor"], env)
    assert healthy.returncode == 0 and "FAIL" not in healthy.stdout, healthy.stdout
    assert "version interviews.v" in healthy.stdout
    store = data_dir / "index" / "chroma.sqlite3"
    store.write_bytes(b"this is not a database" * 100)
    doctor = rag(["doctor"], env)
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    assert [line for line in doctor.stdout.splitlines() if line.startswith("FAIL")] == [
        next(line for line in doctor.stdout.splitlines() if str(data_dir / "index") in line)]
    for args in (["ask", "sycophancy"], ["ingest", "--quiet"]):
        out = rag(args, env)
        assert out.returncode == 1
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert str(data_dir / "index") in out.stderr and "backup" in out.stderr
    assert store.read_bytes() == b"this is not a database" * 100  # nothing overwrote it


def test_a_chroma_server_that_is_down_is_named_after_a_bounded_retry(tmp_path, monkeypatch):
    port = free_port()
    settings = Settings(data_dir=tmp_path / "data", chroma_host="127.0.0.1", chroma_port=port)
    started = time.monotonic()
    with pytest.raises(UserError, match=f"Cannot reach the Chroma server at http://127.0.0.1:{port}"):
        build_pipeline(settings).search("anything")
    assert time.monotonic() - started < sum(chroma.SERVER_RETRY_DELAYS) + 10


def test_a_chroma_server_that_never_answers_is_named_after_a_bounded_wait(tmp_path, monkeypatch):
    monkeypatch.setattr(chroma, "SERVER_RETRY_DELAYS", (0.1,))
    with SilentServer() as hung:
        port = int(hung.base_url.split(":")[2].split("/")[0])
        settings = Settings(data_dir=tmp_path / "data", chroma_host="127.0.0.1", chroma_port=port, chroma_timeout=1)
        started = time.monotonic()
        with pytest.raises(UserError, match=f"Cannot reach the Chroma server at http://127.0.0.1:{port}"):
            build_pipeline(settings).search("anything")
    assert time.monotonic() - started < 2 * 1 + 0.1 + 5  # two attempts of 1 s, not forever


def test_a_transient_server_failure_is_retried_a_bounded_number_of_times(monkeypatch):
    monkeypatch.setattr(chroma, "SERVER_RETRY_DELAYS", (0, 0, 0))
    failures = []

    def connect(fail_times: int):
        def attempt():
            if len(failures) < fail_times:
                failures.append(1)
                raise ValueError("Could not connect to a Chroma server. Are you sure it is running?")
            return chromadb.EphemeralClient()
        return attempt

    assert ChromaStore(connect(2), "interviews", "http://flaky:8000", server=True).current_name() is None
    failures.clear()
    with pytest.raises(StoreError, match="http://flaky:8000"):
        ChromaStore(connect(99), "interviews", "http://flaky:8000", server=True).current_name()
    assert len(failures) == 1 + len(chroma.SERVER_RETRY_DELAYS)
