"""LLM backends every step may use (answers, follow-ups, expansion, enrichment, checks): LangChain
chat models behind one small protocol."""
