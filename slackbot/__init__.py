"""The Slack bot (`rag slack`): a `rag.commands` plugin, so `rag/` imports nothing from here."""
