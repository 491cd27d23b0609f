-- reference_entities_by_organization: the reference data enrichment looks
-- up, as in 0012_reference_entities.sql, but keyed by organization.
--
-- Why a new table: reference_entities was ORDER BY (kind, entity_id), so
-- two organizations sharing an id (a shared game registry, a platform's
-- user ids) replaced each other's entity, and the loser's events lost
-- their course and department. The replacement key of a ReplacingMergeTree
-- cannot be altered, so the rows move here; streams/reference_store.py
-- reads and writes only this table. reference_entities is left as it was
-- (no longer written), so a rollback to the previous version still finds
-- its data; drop it once that is no longer wanted.
--
-- Queries it serves: load everything at worker start, and point lookups
-- by (organization, kind, entity_id) for a backfill batch, which names
-- one organization's entities; hence ORDER BY organization_id, kind,
-- entity_id, which is also the replacement key: the row with the highest
-- _version is the entity. No partitions and no TTL: reference data lives
-- as long as the entity.
CREATE TABLE IF NOT EXISTS reference_entities_by_organization
(
    organization_id String,
    -- user | content | enrollment | course | class (streams/reference.py: Kind)
    kind            LowCardinality(String),
    entity_id       String,
    -- the merged attributes as JSON, e.g. {"department_id": ..., "role": ...}
    attributes      String,
    _version        UInt64
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY (organization_id, kind, entity_id)
SETTINGS
    -- dedup tokens of retried sink inserts need a window on non-replicated tables
    non_replicated_deduplication_window = 10000;

-- The surviving entity of each old key, with its version, so that copying
-- again (a crash before the migration was recorded) changes nothing.
INSERT INTO reference_entities_by_organization (organization_id, kind, entity_id, attributes, _version)
SELECT organization_id, kind, entity_id, attributes, _version
FROM reference_entities FINAL;
