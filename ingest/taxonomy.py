"""Event types, their categories, and the spellings we accept for them.

Canonical names are snake_case (`game_stage_complete`), as in the Event
Model seed's categories and examples. The seeds also write camelCase
(`gameStageComplete`, its "Standard Properties"), and clients send
PascalCase and kebab-case; all of these are aliases of the canonical name,
which is what is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import schemas

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[-.\s]+")


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    category: str
    group: str
    sampling: str
    is_error: bool


def canonical_name(raw: str) -> str:
    """`gameStageComplete`, `GameStageComplete`, `game-stage-complete` -> `game_stage_complete`."""
    return _SEPARATORS.sub("_", _CAMEL_BOUNDARY.sub("_", raw)).lower()


@cache
def event_types() -> dict[str, EventType]:
    return {
        name: EventType(name, spec["category"], spec["group"], spec["sampling"], spec["is_error"])
        for name, spec in schemas.load("taxonomy.json")["event_types"].items()
    }


def lookup(raw: str) -> EventType | None:
    types = event_types()
    return types.get(raw) or types.get(canonical_name(raw))
