"""The durable copy of the reference data in ClickHouse (`reference_entities`).

The stream app writes every reference update here before it updates its
Faust tables, so this copy is never older than the tables' changelog; it
reloads the tables from here at start (the embedded broker forgets its
changelogs on restart). Backfill reads it directly, as it may run where
no stream worker is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from lms_events.clickhouse import ClickHouseStore
from streams.reference import Kind

Entity = tuple[Kind, str]


def entity_rows(entities: Mapping[Entity, Mapping[str, Any]], version: int) -> list[dict[str, Any]]:
    """`reference_entities` rows of merged entities."""
    return [
        {
            "kind": str(kind),
            "entity_id": key,
            "organization_id": attributes.get("organization_id") or "",
            "attributes": orjson.dumps(attributes).decode(),
            "_version": version,
        }
        for (kind, key), attributes in entities.items()
    ]


def _entities(rows: Iterable[Mapping[str, Any]]) -> dict[Entity, dict[str, Any]]:
    return {(Kind(row["kind"]), row["entity_id"]): orjson.loads(row["attributes"]) for row in rows}


async def load_all(store: ClickHouseStore) -> dict[Entity, dict[str, Any]]:
    rows = await store.query("SELECT kind, entity_id, attributes FROM reference_entities FINAL")
    return _entities(rows)


async def load_entities(store: ClickHouseStore, wanted: Iterable[Entity]) -> dict[Entity, dict[str, Any]]:
    """The stored entities among `wanted` (absent ones are left out)."""
    by_kind: dict[str, list[str]] = {}
    for kind, key in set(wanted):
        by_kind.setdefault(str(kind), []).append(key)
    found: dict[Entity, dict[str, Any]] = {}
    for kind, keys in by_kind.items():
        # The keys travel as one JSON string: both drivers bind a String alike.
        rows = await store.query(
            "SELECT kind, entity_id, attributes FROM reference_entities FINAL WHERE kind = {kind:String} "
            "AND entity_id IN (SELECT arrayJoin(JSONExtract({keys:String}, 'Array(String)')))",
            {"kind": kind, "keys": orjson.dumps(keys).decode()},
        )
        found.update(_entities(rows))
    return found


class EntityMap:
    """A ReferenceLookup over entities held in a dict (backfill batches)."""

    def __init__(self, entities: Mapping[Entity, Mapping[str, Any]]) -> None:
        self.entities = entities

    def get(self, kind: Kind, key: str) -> Mapping[str, Any] | None:
        return self.entities.get((kind, key))
