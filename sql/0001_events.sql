-- events: learning and user-interaction events, one row per accepted event.
--
-- Written by the stream sink (streams/sink.py) in Arrow micro-batches; the
-- column list below is the only one: the sink reads it back with DESCRIBE
-- and builds its Arrow schema from it.
--
-- Queries it serves, most frequent first:
--   dashboards and rollups: one organization, some event types, a time range
--   learner timelines: one organization, one user, a time range
--   analyst SQL: anything, usually scoped by organization and month
-- hence ORDER BY from low to high cardinality: organization, type, day,
-- then user (timelines inside a day read contiguous granules), then
-- event_id, which makes the key unique per event so ReplacingMergeTree
-- collapses replays of the same event into one row.
--
-- PARTITION BY month: the TTL drops whole months of old data cheaply and a
-- backfill or an analyst query on a month touches one partition. Replays
-- of one event always land in the same partition (the timestamp is part
-- of the event), so replacement within a partition is enough.
--
-- TTL from retention_days, set per event by the gateway from its
-- privacy_level (standard 7 years, sensitive 3, pii 1).
CREATE TABLE IF NOT EXISTS events
(
    event_id           String,
    event_type         LowCardinality(String),
    event_category     LowCardinality(String),
    timestamp          DateTime64(3, 'UTC'),
    received_at        DateTime64(3, 'UTC'),
    organization_id    String,
    user_id            String,
    session_id         String,
    privacy_level      LowCardinality(String),
    retention_days     UInt16,
    platform           LowCardinality(String),
    device_info        String CODEC(ZSTD(3)),
    context            String CODEC(ZSTD(3)),
    properties         String CODEC(ZSTD(3)),

    -- Denormalized by enrichment (streams/enrich.py); '' / NULL when unknown.
    course_id          String,
    class_id           String,
    enrollment_id      String,
    department_id      String,
    user_role          LowCardinality(String),
    content_type       LowCardinality(String),
    score              Nullable(Float32),
    duration_ms        Nullable(UInt64),
    -- References enrichment could not resolve yet; backfill fills them.
    enrichment_missing Array(LowCardinality(String)),

    -- Aggregation period markers of the enrichment seed, derived from the
    -- event time in UTC; ClickHouse derives them when the writer does not.
    event_date         Date DEFAULT toDate(timestamp),
    event_week         LowCardinality(String) DEFAULT concat(toString(toISOYear(timestamp)), '-W', leftPad(toString(toISOWeek(timestamp)), 2, '0')),
    event_month        LowCardinality(String) DEFAULT formatDateTime(timestamp, '%Y-%m'),

    -- Replacement version: a later load (backfill re-enrichment) wins.
    _version           UInt64,

    INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_event_id event_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_course_id course_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (organization_id, event_type, toDate(timestamp), user_id, event_id)
TTL toDateTime(timestamp) + toIntervalDay(retention_days)
SETTINGS
    -- insert_deduplication_token works on non-replicated tables only with a window:
    -- a retried sink insert with the same token is dropped.
    non_replicated_deduplication_window = 10000,
    -- rows of different retention share parts; expire rows, not only whole parts.
    ttl_only_drop_parts = 0;
