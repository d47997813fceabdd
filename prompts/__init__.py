"""Prompt and phrase files, loaded by name through `rag.prompts` (a package, so they install)."""
