"""Reference data as Faust tables, one per `Kind`, built by the reference agent.

GlobalTables, because the lookups come from `events.raw`, which is keyed
by session, not by user or course: every worker needs every entity, so
each keeps a full replica fed by the changelog (reference data is small:
users, courses, enrollments). One changelog partition, as Faust advises
for global tables read by several workers.

Memory store plus changelog rather than an on-disk store: the durable copy
is `reference_entities` in ClickHouse (see streams/reference_store.py),
which backfill needs anyway; a second on-disk copy (rocksdict) would be one
more thing to keep consistent, and would still be lost with the node.
`use_partitioner` lets the start-up reload write outside an agent.

Keyed by (organization, key) encoded as a JSON array string: a table key
must survive the changelog's JSON round trip (a tuple would come back a
list), and the array keeps any two pairs apart whatever their ids hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
import orjson
import structlog

from streams.reference import EntityId, Kind

log = structlog.get_logger(__name__)

CHANGELOG_PARTITIONS = 1


def table_name(kind: Kind) -> str:
    return f"reference-{kind}"


def table_key(organization_id: str, key: str) -> str:
    return orjson.dumps((organization_id, key)).decode()


class ReferenceTables:
    def __init__(self, app: faust.App) -> None:
        self.tables = {
            kind: app.GlobalTable(
                table_name(kind), default=None, partitions=CHANGELOG_PARTITIONS, use_partitioner=True
            )
            for kind in Kind
        }
        # Reads bypass the table's per-key sensors (hot path: several
        # lookups per event); writes go through the table, which sends the changelog.
        self._stores = {kind: table.data for kind, table in self.tables.items()}

    def get(self, kind: Kind, organization_id: str, key: str) -> Mapping[str, Any] | None:
        return self._stores[kind].get(table_key(organization_id, key))

    def apply(self, entities: Mapping[EntityId, Mapping[str, Any]]) -> None:
        for (kind, organization_id, key), attributes in entities.items():
            self.tables[kind][table_key(organization_id, key)] = dict(attributes)

    def reload(self, stored: Mapping[EntityId, Mapping[str, Any]]) -> int:
        """Write the stored entities the tables lack or hold differently; returns how many."""
        changed = {entity: attributes for entity, attributes in stored.items() if self.get(*entity) != attributes}
        self.apply(changed)
        log.info("reference_reloaded", stored=len(stored), changed=len(changed))
        return len(changed)
