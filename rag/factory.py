"""The one place that turns `Settings` into working components."""

from __future__ import annotations

from vectorstore.chroma import ChromaIndex

from .answering import Answerer, ExtractiveAnswerer
from .embeddings import E5Embedder, Embedder, SentenceTransformerEmbedder
from .errors import ConfigError
from .index import CorpusIndex
from .pipeline import Pipeline
from .retrieval import HybridRetriever
from .settings import Settings
from .speakers import default_speakers, default_venues


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "sentence-transformers":
        if not settings.embedding_model:
            raise ConfigError("RAG_EMBEDDER=sentence-transformers needs RAG_EMBEDDING_MODEL (a model path or name).")
        return SentenceTransformerEmbedder(settings.embedding_model, num_threads=settings.embedder_threads)
    return E5Embedder(num_threads=settings.embedder_threads, runtime=settings.e5_runtime,
                      cache_dir=settings.model_cache)


def build_index(settings: Settings) -> CorpusIndex:
    store = ChromaIndex.open(
        settings.collection, path=settings.chroma_path, host=settings.chroma_host, port=settings.chroma_port
    )
    lexical_path = settings.data_dir / "lexical" / f"{settings.collection}.json"
    return CorpusIndex(store, lexical_path)


def build_answerer(settings: Settings) -> Answerer:
    return ExtractiveAnswerer(min_confidence=settings.min_confidence)


def build_reranker(settings: Settings):
    if not settings.reranker_model:
        return None
    from .rerank import CrossEncoderReranker

    return CrossEncoderReranker(settings.reranker_model)


def build_pipeline(settings: Settings | None = None) -> Pipeline:
    settings = settings or Settings()
    embedder = build_embedder(settings)
    index = build_index(settings)
    retriever = HybridRetriever(
        index, embedder, default_speakers(), candidates=settings.candidates, reranker=build_reranker(settings),
        venues=default_venues(),
    )
    return Pipeline(settings, index, embedder, retriever, build_answerer(settings))
