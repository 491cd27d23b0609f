-- perf_events: system performance events (page/API/asset timings, health
-- checks) and error events (javascript_error, api_error, game_error,
-- network_error), routed here by streams/route.py. Errors also go to the
-- Kafka topic `alerts`; this table is their history.
--
-- Same columns as `events` (AS events: one column list, and the sink
-- writes the same enriched row to any routed table), plus is_error.
-- A column added to `events` later is added here in the same migration.
--
-- Queries it serves, most frequent first:
--   error rate / p95 timing per event type for one organization, last hours to days
--   "what broke in this release": one organization, errors only, a time range
-- hence ORDER BY organization, event type (low cardinality, always filtered),
-- day, then event_id so the key is unique per event and ReplacingMergeTree
-- collapses replays. is_error is a column, not part of the key: the error
-- types are already separated by event_type.
--
-- PARTITION BY day together with a 30-day TTL: about 30 partitions, and
-- expiry drops whole days. Operational data is worth little after a month,
-- and is never kept longer than the event's own retention_days.
CREATE TABLE IF NOT EXISTS perf_events AS events
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (organization_id, event_type, toDate(timestamp), event_id)
TTL toDateTime(timestamp) + toIntervalDay(least(retention_days, 30))
SETTINGS
    -- insert_deduplication_token works on non-replicated tables only with a window:
    -- a retried sink insert with the same token is dropped.
    non_replicated_deduplication_window = 10000,
    -- rows of different retention share parts; expire rows, not only whole parts.
    ttl_only_drop_parts = 0;

ALTER TABLE perf_events ADD COLUMN IF NOT EXISTS is_error Bool AFTER properties;
