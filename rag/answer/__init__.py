"""Passages → the answer users see: a drafted answer (quotes or an LLM's), the LLM's answerability
check, and citation parsing and verification."""
