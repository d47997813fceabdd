"""Files → speaker turns → chunks → the index: parsing, chunking, optional LLM enrichment, and the
idempotent, atomic build that publishes a new index version."""
