"""Routing: which ClickHouse tables an event goes to, and whether it raises an alert.

By category (schemas/taxonomy.json):
- learning_progress, user_interaction -> `events`
- system_performance                  -> `perf_events`
- errors (taxonomy `is_error`)        -> `perf_events` and Kafka `alerts`
- business_intelligence               -> `bi_events`
An event of a type or category the taxonomy does not know goes to
`events`, so it is stored rather than dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pyarrow as pa

from streams.enrich import taxonomy_entry

EVENTS_TABLE = "events"
# Where rows routed to `events` are inserted, signed (sql/0015_event_loads.sql).
EVENT_LOADS_TABLE = "event_loads"
PERF_TABLE = "perf_events"
BI_TABLE = "bi_events"
REJECTED_TABLE = "rejected_events"


_TABLE_OF_CATEGORY = {
    "learning_progress": EVENTS_TABLE,
    "user_interaction": EVENTS_TABLE,
    "system_performance": PERF_TABLE,
    "business_intelligence": BI_TABLE,
}


@dataclass(frozen=True)
class Route:
    table: str
    alert: bool


@lru_cache(maxsize=1024)
def route_for(event_type: str, category: str) -> Route:
    is_error = bool(taxonomy_entry(event_type).get("is_error"))
    return Route(PERF_TABLE if is_error else _TABLE_OF_CATEGORY.get(category, EVENTS_TABLE), alert=is_error)


def rows_by_table(batch: pa.Table, routes: list[Route]) -> dict[str, pa.Table]:
    """The rows of a batch per table they go to (`routes` holds each row's route)."""
    tables = {route.table for route in routes}
    if len(tables) == 1:  # the usual batch: one kind of traffic
        return {tables.pop(): batch}
    return {table: batch.filter(pa.array([route.table == table for route in routes])) for table in sorted(tables)}
