-- reference_entities: the reference data enrichment looks up (users,
-- course contents, enrollments, courses), one row per entity with its
-- merged attributes, written by the reference agent of streams/app.py
-- from the domain-event topics.
--
-- Why in ClickHouse at all, when the stream app keeps it in Faust tables:
-- the embedded broker (Tansu) keeps topics, changelogs included, only in
-- memory, so a restart of `lms-events up` would forget every user and
-- course. This table is the durable copy the worker reloads its tables
-- from at start, and the one `lms-events backfill` reads (it may run
-- without a stream worker).
--
-- Queries it serves: load everything at worker start (small: users,
-- courses, enrollments), and point lookups by (kind, entity_id) for a
-- backfill batch; hence ORDER BY kind, entity_id, which is also the
-- replacement key: the row with the highest _version is the entity.
-- No partitions and no TTL: reference data lives as long as the entity.
CREATE TABLE IF NOT EXISTS reference_entities
(
    -- user | content | enrollment | course (streams/reference.py: Kind)
    kind            LowCardinality(String),
    entity_id       String,
    organization_id String,
    -- the merged attributes as JSON, e.g. {"department_id": ..., "role": ...}
    attributes      String,
    _version        UInt64
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY (kind, entity_id)
SETTINGS
    -- dedup tokens of retried sink inserts need a window on non-replicated tables
    non_replicated_deduplication_window = 10000;
