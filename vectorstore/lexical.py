"""The lexical index: BM25 over the chunks' tokens, persisted next to the vector store.

Weighted query terms are the point of owning this (~60 lines) rather than using a BM25 package:
a term the glossary adds must be able to count less than a word the user typed.
The saved file carries a fingerprint of the chunk ids it was built from, so it is rebuilt
exactly when the indexed content changes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import sparse


FORMAT = 5  # bump when what is derived from the chunks changes, so old saved indexes rebuild


def fingerprint(ids: list[str]) -> str:
    return hashlib.sha256(("\n".join(sorted(ids)) + f"\nformat={FORMAT}").encode()).hexdigest()


class BM25Index:
    """Per-document BM25 weights of every term, as a sparse matrix: a query is one product."""

    def __init__(self, ids: list[str], matrix: sparse.csr_matrix, vocab: dict[str, int], df: dict[str, int],
                 extras: dict | None = None):
        self.ids = ids
        self.matrix = matrix
        self.vocab = vocab
        self.df = df
        self.extras = extras or {}  # derived data saved with the index (e.g. the dictionary bridge)

    @classmethod
    def build(cls, ids: list[str], docs: list[list[str]], extras: dict | None = None, k1: float = 1.2,
              b: float = 0.75) -> "BM25Index":
        vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        lengths = np.array([len(d) for d in docs], dtype=np.float32)
        avgdl = float(lengths.mean()) if len(docs) else 1.0
        df: Counter[str] = Counter()
        for tokens in docs:
            df.update(set(tokens))
        n = len(docs)
        for r, tokens in enumerate(docs):
            norm = k1 * (1 - b + b * lengths[r] / max(avgdl, 1e-9))
            for term, tf in Counter(tokens).items():
                col = vocab.setdefault(term, len(vocab))
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                rows.append(r)
                cols.append(col)
                vals.append(idf * tf * (k1 + 1) / (tf + norm))
        matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(n, max(1, len(vocab))), dtype=np.float32)
        return cls(ids, matrix, vocab, dict(df), extras)

    def scores(self, weighted_terms: dict[str, float]) -> np.ndarray:
        """BM25 score of every document for a bag of weighted query terms."""
        q = np.zeros(self.matrix.shape[1], dtype=np.float32)
        for term, weight in weighted_terms.items():
            col = self.vocab.get(term)
            if col is not None:
                q[col] += weight
        return self.matrix @ q

    def save(self, path: Path) -> None:
        """The weights themselves (loading computes nothing), written through a temporary file of
        this process's own, then renamed: a crash never leaves half an index, and processes saving
        at once never write into each other's file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"fingerprint": fingerprint(self.ids), "ids": self.ids, "vocab": list(self.vocab),
                "df": [self.df[t] for t in self.vocab], "extras": self.extras}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, data=self.matrix.data, indices=self.matrix.indices, indptr=self.matrix.indptr,
                         shape=np.array(self.matrix.shape), meta=np.frombuffer(json.dumps(meta, ensure_ascii=False)
                                                                                 .encode(), dtype=np.uint8))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: Path, expected_ids: list[str]) -> "BM25Index | None":
        """The saved index if it matches `expected_ids`, else None (caller rebuilds)."""
        try:
            with np.load(path) as saved:
                meta = json.loads(saved["meta"].tobytes())
                if meta.get("fingerprint") != fingerprint(expected_ids):
                    return None
                matrix = sparse.csr_matrix((saved["data"], saved["indices"], saved["indptr"]),
                                           shape=tuple(saved["shape"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # missing, older or damaged
            return None
        vocab = {term: col for col, term in enumerate(meta["vocab"])}
        return cls(meta["ids"], matrix, vocab, dict(zip(meta["vocab"], meta["df"])), meta.get("extras"))
