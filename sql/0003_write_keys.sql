-- write_keys: the gateway's write keys, one per organization and environment
-- (and more when rotated). Only the SHA-256 of a key is stored: keys are
-- 190 random bits, so a fast hash is as safe as a slow one here.
--
-- Queries it serves: the gateway loads every active key every few seconds
-- (small table, full scan), `lms-events keys list` by organization. ORDER
-- BY key_id makes a key's versions collapse: revoking inserts a new version
-- with revoked_at set (ReplacingMergeTree keeps the highest _version).
--
-- No TTL and no partitioning: a few rows per organization, kept for audit.
CREATE TABLE IF NOT EXISTS write_keys
(
    key_id          String,
    key_hash        String,
    organization_id String,
    environment     LowCardinality(String),
    name            String,
    created_at      DateTime64(3, 'UTC'),
    revoked_at      Nullable(DateTime64(3, 'UTC')),
    _version        UInt64
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY key_id;
