"""Schemas and lookup values as data files, loaded once.

The JSON files beside this module are the single source for the gateway's
validation, the schema endpoints and the tests.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson

SCHEMA_DIR = Path(__file__).parent


@cache
def load(name: str) -> Any:
    """Parsed contents of `schemas/<name>`; shared, so treat it as read-only."""
    return orjson.loads((SCHEMA_DIR / name).read_bytes())


def event_envelope() -> dict[str, Any]:
    return load("event.schema.json")
