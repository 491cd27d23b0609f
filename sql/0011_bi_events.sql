-- bi_events: business-intelligence events (subscriptions, payments, seat
-- utilization, feature adoption, support tickets), routed here by
-- streams/route.py.
--
-- Same columns as `events` (AS events: one column list; reports by
-- department and role use the enrichment columns). A column added to
-- `events` later is added here in the same migration.
--
-- Queries it serves: monthly and weekly business reports per organization
-- (subscription changes, seat use, adoption by department and role), so
-- ORDER BY organization, event type, month, then event_id (unique per
-- event: ReplacingMergeTree collapses replays). Low volume: the month in
-- the key is enough granularity for range scans.
--
-- PARTITION BY year: a few rows per organization a day; monthly partitions
-- would be tiny parts. TTL from retention_days (billing records follow the
-- event's privacy level, 7 years for standard).
CREATE TABLE IF NOT EXISTS bi_events AS events
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYear(timestamp)
ORDER BY (organization_id, event_type, event_month, event_id)
TTL toDateTime(timestamp) + toIntervalDay(retention_days)
SETTINGS
    -- dedup tokens of retried sink inserts need a window on non-replicated tables
    non_replicated_deduplication_window = 10000,
    -- rows of different retention share parts; expire rows, not only whole parts.
    ttl_only_drop_parts = 0;
