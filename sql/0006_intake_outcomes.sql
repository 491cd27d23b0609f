-- intake_outcomes: how many events of each type got each status, per
-- request: accepted, rejected, duplicate, sampled_out, no_consent. The
-- accounting that shows nothing posted disappeared: events that are not
-- stored (duplicates, sampled out, no consent) are at least counted here.
--
-- Queries it serves: per organization and day, counts by status and type
-- ("how much did sampling drop yesterday?"). ORDER BY organization, day,
-- type, status, then request_id, which makes rows unique per request so a
-- replayed Kafka message replaces its row instead of counting twice
-- (ReplacingMergeTree; query with FINAL or sum over a GROUP BY request_id).
--
-- Partitioned by month and kept 400 days: a year of operations plus margin.
CREATE TABLE IF NOT EXISTS intake_outcomes
(
    received_at     DateTime64(3, 'UTC'),
    organization_id String,
    key_id          String,
    request_id      String,
    event_type      LowCardinality(String),
    status          LowCardinality(String),
    events          UInt32,
    _version        UInt64
)
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(received_at)
ORDER BY (organization_id, toDate(received_at), event_type, status, request_id)
TTL toDateTime(received_at) + INTERVAL 400 DAY
SETTINGS
    -- dedup tokens of retried sink inserts need a window on non-replicated tables
    non_replicated_deduplication_window = 10000;
