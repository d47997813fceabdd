"""Optional second stage: a cross-encoder re-scores the top of the fused list.

Fusion ranks by positions in three lists and never reads the question and a passage together;
a cross-encoder does, which helps when several passages share the question's words but only one
answers it. It costs one transformer pass per (question, passage) pair, so it only sees the
top `pool` passages, and it is off unless `RAG_RERANKER_MODEL` names a local CrossEncoder folder.
"""

from __future__ import annotations

from rag.errors import ConfigError
from rag.models import Passage


class CrossEncoderReranker:
    """`HybridRetriever`'s `reranker`: (question, passages) → the same passages, top re-ordered."""

    def __init__(self, model_path: str, pool: int = 20, batch_size: int = 32):
        if pool < 1:
            raise ConfigError(f"The rerank pool must be at least 1, not {pool}.")
        from sentence_transformers import CrossEncoder

        try:
            # local_files_only: a name that is not a local folder fails at once instead of trying
            # the Hub (this app never downloads at run time).
            self.model = CrossEncoder(model_path, device="cpu", local_files_only=True)
        except Exception as exc:  # FileNotFoundError, OSError offline, HF/config errors
            raise ConfigError(
                f"Cannot load the cross-encoder {model_path!r} set by RAG_RERANKER_MODEL: {exc}. "
                "Set RAG_RERANKER_MODEL to a local sentence-transformers CrossEncoder folder, "
                "or unset it to turn reranking off."
            ) from exc
        self.model_path = model_path
        self.pool = pool
        self.batch_size = batch_size

    def __call__(self, question: str, passages: list[Passage]) -> list[Passage]:
        """Score the first `pool` passages against the question, best first; the rest keep their order.

        The score is kept in `signals["rerank"]`; `score` stays the fused score, so both can be
        inspected. Ties keep the fused order (stable sort).
        """
        head, tail = passages[: self.pool], passages[self.pool :]
        if not head:
            return list(passages)
        pairs = [(question, p.shown_text or p.chunk.text) for p in head]
        scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True)
        for passage, score in zip(head, scores):
            passage.signals["rerank"] = float(score)
        order = sorted(range(len(head)), key=lambda i: -float(scores[i]))
        return [head[i] for i in order] + tail
