"""Who is who, and where: people (canonical names, aliases, transcript labels) and venues.

The tables are data (`resources/speakers.toml`, `resources/venues.toml`); this module answers
which person a transcript label means, and which people or venues a piece of text mentions.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rag.text import has_cjk

RESOURCES = Path(__file__).resolve().parent / "resources"


@dataclass(frozen=True)
class Person:
    name: str
    aliases: tuple[str, ...]
    labels: tuple[str, ...]


class Aliases:
    """Finds the names of things in text: each owner with its aliases, English and Chinese."""

    def __init__(self, owners: Iterable[tuple[str, Iterable[str]]]):
        self._owner = {alias.lower(): owner for owner, aliases in owners for alias in aliases}
        # Longest aliases first so "Amanda Askell" wins over "Amanda". Latin aliases need word
        # boundaries ("Lex" must not match "Lexicon", "CS153" not "CS1530"); Chinese ones cannot
        # have them.
        ordered = sorted(self._owner, key=len, reverse=True)
        parts = [
            re.escape(a) if has_cjk(a) else rf"(?<![A-Za-z0-9]){re.escape(a)}(?![A-Za-z0-9])"
            for a in ordered
        ]
        self._pattern = re.compile("|".join(parts) or r"(?!)", re.IGNORECASE)

    def mentions(self, text: str) -> list[tuple[str, int, int]]:
        """(owner, start, end) for every alias occurrence in `text`."""
        return [(self._owner[m.group(0).lower()], m.start(), m.end()) for m in self._pattern.finditer(text)]

    def mentioned(self, text: str) -> list[str]:
        """Distinct owners named in `text`, in order of first mention."""
        return list(dict.fromkeys(owner for owner, _, _ in self.mentions(text)))



class SpeakerTable:
    def __init__(self, people: list[Person]):
        self.people = people
        self._by_label = {label: p.name for p in people for label in p.labels}
        self._by_lower_name = {p.name.lower(): p.name for p in people}
        self._aliases = Aliases((p.name, p.aliases) for p in people)

    @classmethod
    def load(cls, path: Path = RESOURCES / "speakers.toml") -> "SpeakerTable":
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return cls(
            [
                Person(p["name"], tuple(p.get("aliases", ())), tuple(p.get("labels", ())))
                for p in data.get("person", [])
            ]
        )

    def canonical_label(self, label: str) -> str:
        """The canonical person for a transcript label; unknown labels are kept as written."""
        label = label.strip()
        return self._by_label.get(label) or self._by_lower_name.get(label.lower()) or label

    def resolve(self, name: str) -> str | None:
        """A user-typed name ("askell", "阿莫迪") to its canonical person, if any."""
        found = self.mentioned(name)
        return found[0] if len(found) == 1 else self._by_lower_name.get(name.strip().lower())

    def mentions(self, text: str) -> list[tuple[str, int, int]]:
        """(person, start, end) for every alias occurrence in `text`."""
        return self._aliases.mentions(text)

    def mentioned(self, text: str) -> list[str]:
        """Distinct people named in `text`, in order of first mention."""
        return self._aliases.mentioned(text)


@lru_cache(maxsize=1)
def default_speakers() -> SpeakerTable:
    return SpeakerTable.load()


@lru_cache(maxsize=1)
def default_venues() -> Aliases:
    """Venue alias → the source file of that event ("CS153 office hours" → 001_….txt)."""
    data = tomllib.loads((RESOURCES / "venues.toml").read_text(encoding="utf-8"))
    return Aliases((v["source"], v["aliases"]) for v in data.get("venue", []))
