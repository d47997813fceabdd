"""The textbook LangChain RAG baseline our pipeline is measured against.

- `RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)` over
  the raw text of the same corpus files (no parsing, no speakers, markdown left in), so every
  passage has `[start_index, start_index + len(text))` offsets in its file.
- `langchain_chroma.Chroma` with the pipeline's own embedder (it is a LangChain `Embeddings`),
  persisted under `<data dir>/eval-baseline/<key>`, where the key hashes the files' names and
  bytes, the embedder name and the splitter settings: an unchanged corpus reuses the index, a
  changed one builds a new one (older ones are removed). Cosine space, so a relevance score is
  the cosine similarity (the ranking is the same as under Chroma's default L2 for unit vectors).
- Retrieval is plain `similarity_search_with_relevance_scores(question, k)`: no BM25, no query
  translation, no speaker boost, no MMR.

It feeds the same answerer through a `SearchResult`:
- `plan` is the pipeline retriever's `plan(question)`, so the answerer picks sentences by the
  same query terms (and knows the question's language);
- `confidence` is the dense half of our retriever's confidence, at full weight because it is
  the baseline's only signal: `clip((best relevance − 0.75) / 0.12, 0, 1)`, the same mapping of
  e5 cosines our retriever uses (ours blends it 0.6/0.4 with lexical coverage). The answerer
  abstains below the same `min_confidence`, which amounts to the usual "top score below a
  threshold" rule of textbook pipelines.
- Passages carry no speaker (the answerer then names the file), and the language detected from
  the chunk text.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from tqdm import tqdm

from rag.models import Chunk, Passage, SearchResult
from rag.ingest.parsing import iter_text_files
from rag.retrieve.hybrid import dense_confidence
from rag.text import detect_language

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
COLLECTION = "textbook_baseline"


def baseline_confidence(best_relevance: float) -> float:
    return round(dense_confidence(best_relevance), 4)


class _ProgressEmbeddings(Embeddings):
    """The pipeline's embedder, with a progress bar while the baseline index is built."""

    def __init__(self, embedder, show_progress: bool):
        self.embedder = embedder
        self.show_progress = show_progress

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        with tqdm(total=len(texts), desc="Baseline index", unit="chunk", disable=not self.show_progress) as bar:
            return self.embedder.encode_documents(list(texts), progress=bar.update).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.encode_query(text).tolist()


def corpus_key(files: list[Path], embedder_name: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"{embedder_name}|{CHUNK_SIZE}|{CHUNK_OVERLAP}|cosine".encode())
    for path in sorted(files, key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class TextbookBaseline:
    name = "baseline"
    prefix_stable = True  # top-k is the first k of top-n: one search serves every cut-off

    def __init__(self, settings, embedder, planner, show_progress: bool = True):
        from langchain_chroma import Chroma
        from chromadb.config import Settings as ChromaSettings

        self.settings = settings
        self.planner = planner  # the pipeline retriever's plan(question)
        files = [p for p in iter_text_files(list(settings.corpus)) if p.is_file()]
        if not files:
            raise ValueError("the baseline found no corpus files to index")
        self.files = files
        self.key = corpus_key(files, getattr(embedder, "name", type(embedder).__name__))
        root = Path(settings.data_dir) / "eval-baseline"
        self.directory = root / self.key
        marker = self.directory / "complete.json"
        fresh = not marker.exists()
        if fresh and self.directory.exists():
            shutil.rmtree(self.directory)  # an interrupted build
        if fresh and root.exists():
            for old in root.iterdir():  # indexes of an older corpus
                if old.is_dir() and old.name != self.key:
                    shutil.rmtree(old, ignore_errors=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.store = Chroma(
            collection_name=COLLECTION,
            embedding_function=_ProgressEmbeddings(embedder, show_progress),
            persist_directory=str(self.directory),
            client_settings=ChromaSettings(anonymized_telemetry=False),
            collection_configuration={"hnsw": {"space": "cosine"}},
        )
        self.built = fresh
        if fresh:
            self._build()
            marker.write_text(json.dumps({"files": [p.name for p in files], "chunks": self.count}), encoding="utf-8")

    def _build(self) -> None:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(
            chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=True
        )
        docs = [Document(page_content=p.read_text(encoding="utf-8"), metadata={"source": p.name}) for p in self.files]
        splits = splitter.split_documents(docs)
        ids = [f"{d.metadata['source']}:{d.metadata['start_index']}" for d in splits]
        self.store.add_documents(splits, ids=ids)

    @property
    def count(self) -> int:
        return self.store._collection.count()

    def search(self, question: str, k: int) -> SearchResult:
        question = question.strip()
        plan = self.planner(question)
        hits = self.store.similarity_search_with_relevance_scores(question, k=k)
        passages = []
        for rank, (doc, relevance) in enumerate(hits, 1):
            start = int(doc.metadata["start_index"])
            source = doc.metadata["source"]
            chunk = Chunk(
                id=f"baseline:{source}:{start}", source=source, title=source, speaker=None, subject=None,
                language=detect_language(doc.page_content), section=None, text=doc.page_content,
                char_start=start, char_end=start + len(doc.page_content), turn_index=-1,
            )
            passages.append(Passage(chunk=chunk, score=float(relevance), rank=rank, shown_text=doc.page_content,
                                    signals={"dense": float(relevance)}))
        best = passages[0].score if passages else 0.0
        return SearchResult(plan, passages, baseline_confidence(best))
