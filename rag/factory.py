"""The one place that turns `Settings` into working components."""

from __future__ import annotations

from rag.answer.answerability import AnswerabilityCheck
from rag.answer.answerers import Answerer, ExtractiveAnswerer, LLMAnswerer
from rag.errors import ConfigError
from rag.index.corpus import CorpusIndex
from rag.index.embeddings import E5Embedder, Embedder, SentenceTransformerEmbedder
from rag.ingest.enrichment import EnrichmentWriter
from rag.llm.backends import ChatBackend, build_backend
from rag.pipeline import Pipeline
from rag.retrieve.expansion import QueryTranslator
from rag.retrieve.followups import Condenser
from rag.retrieve.hybrid import HybridRetriever
from rag.settings import Settings
from rag.speakers import default_speakers, default_venues
from vectorstore.chroma import ChromaStore
from vectorstore.embedding_cache import EmbeddingCache
from vectorstore.enrichment_store import EnrichmentStore


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "sentence-transformers":
        if not settings.embedding_model:
            raise ConfigError("RAG_EMBEDDER=sentence-transformers needs RAG_EMBEDDING_MODEL (a model path or name).")
        return SentenceTransformerEmbedder(settings.embedding_model, num_threads=settings.embedder_threads,
                                           precision=settings.embedder_precision)
    return E5Embedder(num_threads=settings.embedder_threads, runtime=settings.e5_runtime,
                      cache_dir=settings.model_cache, precision=settings.embedder_precision)


def build_index(settings: Settings) -> CorpusIndex:
    if settings.chroma_host:
        store = ChromaStore.server(settings.chroma_host, settings.chroma_port, settings.collection,
                                   settings.chroma_timeout)
    else:
        store = ChromaStore.embedded(settings.index_path, settings.collection)
    return CorpusIndex(store, settings.data_dir / "lexical", settings.data_dir / "snapshots",
                       EmbeddingCache(settings.data_dir / "embeddings.sqlite"),
                       EnrichmentStore(settings.data_dir / "enrichments.sqlite"))


def build_answerer(backend: ChatBackend | None, settings: Settings) -> Answerer:
    if backend is None:
        return ExtractiveAnswerer()
    return LLMAnswerer(backend, settings.llm_context_tokens)


def build_reranker(settings: Settings):
    if not settings.reranker_model:
        return None
    from rag.retrieve.rerank import CrossEncoderReranker

    return CrossEncoderReranker(settings.reranker_model)


def build_pipeline(settings: Settings | None = None) -> Pipeline:
    settings = settings or Settings()
    backend = build_backend(settings)  # first: a misconfigured LLM fails before any slow loading
    embedder = build_embedder(settings)
    index = build_index(settings)
    speakers = default_speakers()
    retriever = HybridRetriever(
        index, embedder, speakers, candidates=settings.candidates, reranker=build_reranker(settings),
        venues=default_venues(),
    )
    translator = (QueryTranslator(backend, settings.llm_expansion_timeout)
                  if backend is not None and settings.llm_query_expansion else None)
    checker = (AnswerabilityCheck(backend, settings.llm_check_timeout)
               if backend is not None and settings.llm_answerability_check else None)
    enricher = EnrichmentWriter(backend, settings.llm_enrich_timeout) if backend is not None else None
    return Pipeline(settings, index, embedder, retriever, build_answerer(backend, settings),
                    Condenser(speakers, backend), translator, checker, enricher)
