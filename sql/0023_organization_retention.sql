-- organization_retention: how long an organization keeps its events, when
-- shorter than the Event Model seed's caps (the seed's open question:
-- retention configurable per organization). `lms-events retention set`
-- writes it (lms_events/retention.py); the gateway reloads it every few
-- seconds and stamps each event's retention_days from it; setting it also
-- shortens the retention_days of rows already stored.
--
-- Queries it serves: the gateway's reload of every organization's policy
-- (a few rows each; full scan) and `retention show --org`; ORDER BY
-- organization_id makes versions collapse, the latest winning.
-- No TTL: the policy lives as long as the organization.
CREATE TABLE IF NOT EXISTS organization_retention
(
    organization_id String,
    -- {"standard": 730, "pii": 180}: privacy level -> days, only levels shortened
    by_privacy_level String,
    -- {"system_performance": 90}: category -> days, only categories shortened
    by_category     String,
    updated_at      DateTime64(3, 'UTC'),
    _version        UInt64
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY organization_id;
