"""Question → ranked passages: follow-ups made to stand alone, LLM query expansion, hybrid dense +
BM25 search, optional reranking, and the coverage signals that say the interviews cannot answer."""
