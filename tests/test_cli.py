"""The `rag` command as scripts use it: the JSON contract, stdin batches, errors."""

from __future__ import annotations

import json
import subprocess
import sys

SEARCH_KEYS = {"rank", "text", "source", "char_start", "char_end", "speaker", "score"}
CITATION_KEYS = {"n", "text", "source", "char_start", "char_end", "speaker"}


def rag(args: list[str], env: dict, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_search_json_shape(cli_env):
    out = rag(["search", "what did Askell say about sycophancy", "-k", "3", "--json"], cli_env)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["query"] == "what did Askell say about sycophancy"
    assert 0.5 <= payload["confidence"] <= 1.0
    assert [p["rank"] for p in payload["passages"]] == [1, 2, 3]
    for p in payload["passages"]:
        assert SEARCH_KEYS <= p.keys()
        assert isinstance(p["score"], float) and isinstance(p["char_start"], int)
        assert p["char_start"] < p["char_end"]


def test_ask_json_shape_and_citations(cli_env):
    out = rag(["ask", "what did Askell say about sycophancy", "--json"], cli_env)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert {"question", "answer", "abstained", "confidence", "citations", "passages"} <= payload.keys()
    assert payload["abstained"] is False and payload["confidence"] >= 0.5
    assert payload["citations"] and all(CITATION_KEYS <= c.keys() for c in payload["citations"])
    assert any(c["speaker"] == "Amanda Askell" for c in payload["citations"])
    spans = {(p["source"], p["char_start"], p["char_end"]) for p in payload["passages"]}
    assert all((c["source"], c["char_start"], c["char_end"]) in spans for c in payload["citations"])


def test_off_topic_question_abstains(cli_env):
    out = rag(["ask", "What is the capital of Peru?", "--json"], cli_env)
    payload = json.loads(out.stdout)
    assert payload["abstained"] is True and payload["citations"] == [] and payload["confidence"] < 0.5
    assert payload["answer"].endswith("They never mention Peru.")


def test_stdin_batch_gives_one_json_object_per_line(cli_env):
    out = rag(["ask", "-", "--json"], cli_env, stdin="阿莫迪怎么看规模化定律？\n\nWhat is the capital of Peru?\n")
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["question"] for line in lines] == ["阿莫迪怎么看规模化定律？", "What is the capital of Peru?"]
    assert lines[0]["abstained"] is False and lines[1]["abstained"] is True


def test_bad_line_in_a_batch_is_reported_and_the_rest_answered(cli_env):
    out = rag(["search", "-", "--json", "--speaker", "Nobody Known"], cli_env, stdin="sycophancy\n")
    assert out.returncode == 1
    assert "Unknown speaker" in json.loads(out.stdout.splitlines()[0])["error"]


def test_human_output_lists_citations(cli_env):
    out = rag(["ask", "克里斯·欧拉如何看待神经网络之美？"], cli_env)
    assert out.returncode == 0, out.stderr
    assert "[1]" in out.stdout and "Chris Olah" in out.stdout


def test_ingest_reports_a_bad_file_and_indexes_the_rest(cli_env, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.txt").write_text("Eve: Honesty matters most.\n\nFrank: Why?\n\nEve: Trust.\n\nFrank: Ok.\n",
                                     encoding="utf-8")
    (folder / "bad.txt").write_bytes(b"\xff\xfe\x00b\x00a\x00d")
    env = {**cli_env, "RAG_DATA_DIR": str(tmp_path / "data")}
    out = rag(["ingest", str(folder), "--quiet"], env)
    assert out.returncode == 1
    assert "bad.txt" in out.stderr
    assert "1 file(s) indexed" in out.stdout


def test_empty_index_tells_the_user_what_to_do(tmp_path, cli_env):
    env = {**cli_env, "RAG_DATA_DIR": str(tmp_path / "empty"), "RAG_CORPUS": json.dumps([str(tmp_path / "nothing")])}
    out = rag(["search", "anything"], env)
    assert out.returncode != 0
    assert "rag ingest" in out.stderr
