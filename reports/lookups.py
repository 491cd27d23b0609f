"""Lookup values of the report system, from `schemas/report_lookups.json`
(and the event-type category from `schemas/taxonomy.json`), loaded once.

`check(category, value, field)` is the one validation every enum field of
a report object goes through: a bad value is a BadRequest naming the
field and the allowed values.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import schemas
from lms_events.errors import BadRequest

LOOKUP_FILE = "report_lookups.json"
EVENT_TYPE = "event-type"


@cache
def categories() -> dict[str, tuple[str, ...]]:
    """Category -> its values, in the file's order."""
    listed = {name: tuple(values) for name, values in schemas.load(LOOKUP_FILE)["categories"].items()}
    listed[EVENT_TYPE] = tuple(schemas.load("taxonomy.json")["event_types"])
    return listed


def descriptions(category: str) -> dict[str, str]:
    """Value -> its description, for the categories of the lookup file."""
    return dict(schemas.load(LOOKUP_FILE)["categories"][category])


def values(category: str) -> tuple[str, ...]:
    return categories()[category]


def check(category: str, value: str, field: str) -> str:
    allowed = values(category)
    if value not in allowed:
        raise BadRequest(f"{field} must be one of {', '.join(allowed)}; got {value!r}", field=field)
    return value


def check_all(category: str, items: Iterable[str], field: str) -> list[str]:
    return [check(category, item, f"{field}[{n}]") for n, item in enumerate(items)]
