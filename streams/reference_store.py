"""The durable copy of the reference data in ClickHouse (`reference_entities_by_organization`).

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
from streams.reference import EntityId, Kind

REFERENCE_TABLE = "reference_entities_by_organization"


def entity_rows(entities: Mapping[EntityId, Mapping[str, Any]], version: int) -> list[dict[str, Any]]:
    """`reference_entities_by_organization` rows of merged entities."""
    return [
        {
            "organization_id": entity.organization_id,
            "kind": str(entity.kind),
            "entity_id": entity.key,
            "attributes": orjson.dumps(attributes).decode(),
            "_version": version,
        }
        for entity, attributes in entities.items()
    ]


def _entities(rows: Iterable[Mapping[str, Any]]) -> dict[EntityId, dict[str, Any]]:
    return {
        EntityId(Kind(row["kind"]), row["organization_id"], row["entity_id"]): orjson.loads(row["attributes"]) for row in rows
    }


async def load_all(store: ClickHouseStore) -> dict[EntityId, dict[str, Any]]:
    rows = await store.query(f"SELECT organization_id, kind, entity_id, attributes FROM {REFERENCE_TABLE} FINAL")
    return _entities(rows)


async def load_entities(store: ClickHouseStore, wanted: Iterable[EntityId]) -> dict[EntityId, dict[str, Any]]:
    """The stored entities among `wanted` (absent ones are left out)."""
    by_scope: dict[tuple[str, str], list[str]] = {}
    for entity in set(wanted):
        by_scope.setdefault((entity.organization_id, str(entity.kind)), []).append(entity.key)
    found: dict[EntityId, dict[str, Any]] = {}
    for (organization_id, kind), keys in by_scope.items():
        # The keys travel as one JSON string: both drivers bind a String alike.
        rows = await store.query(
            f"SELECT organization_id, kind, entity_id, attributes FROM {REFERENCE_TABLE} FINAL "
            "WHERE organization_id = {org:String} AND kind = {kind:String} "
            "AND entity_id IN (SELECT arrayJoin(JSONExtract({keys:String}, 'Array(String)')))",
            {"org": organization_id, "kind": kind, "keys": orjson.dumps(keys).decode()},
        )
        found.update(_entities(rows))
    return found


class EntityMap:
    """A ReferenceLookup over entities held in a dict (backfill batches)."""

    def __init__(self, entities: Mapping[EntityId, Mapping[str, Any]]) -> None:
        self.entities = entities

    def get(self, kind: Kind, organization_id: str, key: str) -> Mapping[str, Any] | None:
        return self.entities.get(EntityId(kind, organization_id, key))
