-- rejected_events: the bad-rows destination. Every event the gateway
-- rejected (with the rules it broke) and every Kafka message the stream
-- could not load, so nothing posted disappears silently.
--
-- Queries it serves: "why are my events rejected?" for one organization
-- over the last days, grouped by rule; hence ORDER BY organization first,
-- then time. event_id and batch_index complete a key that is unique per
-- rejected event, so replays collapse (ReplacingMergeTree); received_at is
-- stamped once by the gateway and travels with the record.
--
-- Kept 90 days: long enough to debug a client release, short because the
-- raw payload may hold data that failed privacy checks.
CREATE TABLE IF NOT EXISTS rejected_events
(
    event_id        String,
    organization_id String,
    batch_index     Int32,
    received_at     DateTime64(3, 'UTC'),
    -- gateway (failed validation) or stream (a message the sink could not load)
    source          LowCardinality(String),
    rules           Array(LowCardinality(String)),
    -- [{"field": ..., "rule": ..., "message": ...}] as JSON
    reasons         String CODEC(ZSTD(3)),
    raw             String CODEC(ZSTD(3)),
    _version        UInt64
)
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(received_at)
ORDER BY (organization_id, received_at, event_id, batch_index)
TTL toDateTime(received_at) + INTERVAL 90 DAY
SETTINGS
    -- dedup tokens of retried sink inserts need a window on non-replicated tables
    non_replicated_deduplication_window = 10000;
