"""Prompts and fixed phrases are files in the top-level `prompts` package, loaded by name.

Each prompt file (`prompts/<name>.toml`) says what it is for (`purpose`) and which variables it
takes (`variables`), and holds a `system` and a `user` template. Loading checks that the
templates use exactly the declared variables, so a prompt and its caller cannot drift apart.
Found through `importlib.resources`, so they work from an installed package too.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

# how prompts name the languages they ask for
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese (简体中文)"}


@dataclass(frozen=True)
class Prompt:
    name: str
    purpose: str
    variables: tuple[str, ...]
    system: str
    user: str

    def messages(self, **values: str) -> list[tuple[str, str]]:
        """(role, text) pairs, as LangChain chat models take them."""
        if set(values) != set(self.variables):
            raise TypeError(f"prompt {self.name!r} takes {sorted(self.variables)}, got {sorted(values)}")
        return [("system", self.system.format(**values)), ("user", self.user.format(**values))]


def _read(name: str) -> dict:
    return tomllib.loads((files("prompts") / f"{name}.toml").read_text(encoding="utf-8"))


def _placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


@lru_cache(maxsize=None)
def load_prompt(name: str) -> Prompt:
    data = _read(name)
    prompt = Prompt(name, data["purpose"], tuple(data["variables"]), data["system"], data["user"])
    used = _placeholders(prompt.system) | _placeholders(prompt.user)
    if used != set(prompt.variables):
        raise ValueError(f"prompts/{name}.toml declares {sorted(prompt.variables)} but uses {sorted(used)}")
    return prompt


@lru_cache(maxsize=1)
def load_phrases() -> dict:
    """`prompts/phrases.toml`: what the app says in fixed words, by language ("en", "zh")."""
    return _read("phrases")


def framing_phrases() -> frozenset[str]:
    """Fixed lines of an answer that make no claim (intro, notes, abstention)."""
    return frozenset(
        text.strip() for lang in load_phrases().values() for key, text in lang.items()
        if key in ("intro", "translated_note", "abstain") and text.strip()
    )
