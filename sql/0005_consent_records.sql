-- consent_records: the durable copy of each user's consent and age band.
-- The gateway serves lookups from Redis; this table is what survives a
-- restart and is reloaded into Redis when the product starts.
--
-- Queries it serves: the reload at start (full scan of the latest version
-- per user) and "what did this user consent to" per organization; ORDER BY
-- (organization_id, user_id) makes a user's versions collapse, the newest
-- _version (load time) winning.
--
-- No TTL: consent must be kept as long as the user's data is.
CREATE TABLE IF NOT EXISTS consent_records
(
    organization_id  String,
    user_id          String,
    -- {"user_interaction": true, ...}; categories left out use the defaults
    categories       String,
    age_band         LowCardinality(Nullable(String)),
    parental_consent Nullable(Bool),
    updated_at       String,
    _version         UInt64
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY (organization_id, user_id)
SETTINGS
    -- dedup tokens of retried sink inserts need a window on non-replicated tables
    non_replicated_deduplication_window = 1000;
