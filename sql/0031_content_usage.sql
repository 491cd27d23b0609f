-- content_usage_daily: how each learner used each course, by event type
-- and UTC day: the read model of the content-usage report
-- (reports/definitions). Neither rollup of 0017_activity_rollups.sql
-- answers it: activity_daily keeps event types but its distinct users
-- are an organization-wide state (no teacher's or filtered scope can be
-- cut out of it), learner_activity_daily keeps users but not event types.
--
-- Fed like them from event_loads (0015_event_loads.sql), weighted by
-- `_sign`: a replayed event (0) adds nothing, a re-enriched one (backfill:
-- -1 old, +1 new) moves from its old course to its new one. Only `events`
-- rows (learning and interaction) with a user count.
--
-- Queries: a report over the scope's users (organization, user: the first
-- two key columns, as learner_activity_daily, since every narrower scope
-- is a set of users), a range of days, optionally courses and event types;
-- grouped by course and event type (or learner, department, day, week,
-- month). Distinct learners are counted at query time from the user
-- column, so any grouping stays exact. Partitioned by month like `events`.
CREATE TABLE IF NOT EXISTS content_usage_daily
(
    organization_id String,
    user_id         String,
    event_date      Date,
    course_id       String,
    event_type      LowCardinality(String),
    events          SimpleAggregateFunction(sum, Int64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(event_date)
ORDER BY (organization_id, user_id, event_date, course_id, event_type)
SETTINGS
    -- a retried sink insert (same dedup token) must not count twice here either
    non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS content_usage_daily_from_loads TO content_usage_daily AS
SELECT organization_id, user_id, event_date, course_id, event_type, sum(_sign) AS events
FROM event_loads WHERE _sign != 0 AND user_id != ''
GROUP BY organization_id, user_id, event_date, course_id, event_type;

-- the events stored before this migration (events FINAL: one row an event)
INSERT INTO content_usage_daily
SELECT organization_id, user_id, event_date, course_id, event_type, count()
FROM events FINAL WHERE user_id != ''
GROUP BY organization_id, user_id, event_date, course_id, event_type;

-- Analyst SQL may read it (analytics/analyst/catalog.py): its description, as 0024 gives the others'.
ALTER TABLE content_usage_daily MODIFY COMMENT 'Events per learner, course, event type and UTC day (learning and interaction events with a user)';
ALTER TABLE content_usage_daily
    COMMENT COLUMN organization_id 'the organization (tenant); analyst queries see only their own',
    COMMENT COLUMN user_id 'the user',
    COMMENT COLUMN event_date 'UTC day of the events',
    COMMENT COLUMN course_id 'course of the events; empty when unknown',
    COMMENT COLUMN event_type 'snake_case event type of the taxonomy',
    COMMENT COLUMN events 'number of events (aggregate with sum)';
