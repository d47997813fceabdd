"""Who is who: canonical names, aliases (English and Chinese) and transcript labels.

The table is data (`resources/speakers.toml`); this module only answers two questions about it:
which person a transcript label means, and which people a piece of text mentions.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent / "resources"


@dataclass(frozen=True)
class Person:
    name: str
    aliases: tuple[str, ...]
    labels: tuple[str, ...]


class SpeakerTable:
    def __init__(self, people: list[Person]):
        self.people = people
        self._by_label = {label: p.name for p in people for label in p.labels}
        self._by_lower_name = {p.name.lower(): p.name for p in people}

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

    @cached_property
    def _alias_pattern(self) -> re.Pattern:
        # Longest aliases first so "Amanda Askell" wins over "Amanda". Latin aliases need word
        # boundaries ("Lex" must not match "Lexicon"); Chinese ones cannot have them.
        aliases = sorted({a for p in self.people for a in p.aliases}, key=len, reverse=True)
        parts = [
            re.escape(a) if re.search(r"[\u3400-\u9fff]", a) else rf"(?<![A-Za-z]){re.escape(a)}(?![A-Za-z])"
            for a in aliases
        ]
        return re.compile("|".join(parts), re.IGNORECASE)

    @cached_property
    def _alias_owner(self) -> dict[str, str]:
        return {a.lower(): p.name for p in self.people for a in p.aliases}

    def mentions(self, text: str) -> list[tuple[str, int, int]]:
        """(person, start, end) for every alias occurrence in `text`."""
        return [
            (self._alias_owner[m.group(0).lower()], m.start(), m.end())
            for m in self._alias_pattern.finditer(text)
        ]

    def mentioned(self, text: str) -> list[str]:
        """Distinct people named in `text`, in order of first mention."""
        seen: list[str] = []
        for person, _, _ in self.mentions(text):
            if person not in seen:
                seen.append(person)
        return seen


@lru_cache(maxsize=1)
def default_speakers() -> SpeakerTable:
    return SpeakerTable.load()
