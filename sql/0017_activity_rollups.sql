-- Activity read models of the `events` table, fed by event_loads
-- (0015_event_loads.sql): every measure is weighted by `_sign`, so a
-- replayed event (sign 0) adds nothing and a re-enriched one (-1 old,
-- +1 new) moves from its old course/class/department to its new one.
-- Distinct-user states and last-seen times take only +1 rows: a user
-- stays counted on the day they were active whatever the enrichment says
-- (a stale combination can only remain for an event whose known course,
-- class or department was changed by `backfill --all`).
-- Only `events` rows count: performance and BI events are in no metric.

-- activity_daily: per organization and UTC day, by department, course,
-- class and event type: events, distinct users, learning time (ms of
-- learning_progress events), score sum and count. Weekly and monthly
-- figures sum days. Queries: an administrator's dashboard and charts
-- over a window of days, unfiltered (organization, day range: the first
-- two key columns), and per course/class/type within it; filtered or
-- narrower scopes need users and read learner_activity_daily instead.
CREATE TABLE IF NOT EXISTS activity_daily
(
    organization_id String,
    event_date      Date,
    department_id   String,
    course_id       String,
    class_id        String,
    event_type      LowCardinality(String),
    events          SimpleAggregateFunction(sum, Int64),
    users           AggregateFunction(uniqExact, String),
    learning_ms     SimpleAggregateFunction(sum, Int64),
    score_sum       SimpleAggregateFunction(sum, Float64),
    score_count     SimpleAggregateFunction(sum, Int64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(event_date)
ORDER BY (organization_id, event_date, department_id, course_id, class_id, event_type)
SETTINGS
    -- a retried sink insert (same dedup token) must not count twice here either
    non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS activity_daily_from_loads TO activity_daily AS
SELECT organization_id, event_date, department_id, course_id, class_id, event_type,
       sum(_sign) AS events,
       uniqExactStateIf(user_id, _sign > 0 AND user_id != '') AS users,
       sum(if(event_category = 'learning_progress', _sign * toInt64(ifNull(duration_ms, 0)), 0)) AS learning_ms,
       sum(_sign * toFloat64(ifNull(score, 0))) AS score_sum,
       sum(if(score IS NULL, 0, _sign)) AS score_count
FROM event_loads WHERE _sign != 0
GROUP BY organization_id, event_date, department_id, course_id, class_id, event_type;

INSERT INTO activity_daily
SELECT organization_id, event_date, department_id, course_id, class_id, event_type,
       count(), uniqExactStateIf(user_id, user_id != ''),
       sum(if(event_category = 'learning_progress', toInt64(ifNull(duration_ms, 0)), 0)),
       sum(toFloat64(ifNull(score, 0))), countIf(score IS NOT NULL)
FROM events FINAL
GROUP BY organization_id, event_date, department_id, course_id, class_id, event_type;

-- learner_activity_daily: the same measures per user and day, by course,
-- class and department, plus all durations (a learner's time in a
-- course) and the last event time. Queries: everything scoped to a set
-- of users or filtered by course/class/department (dashboards of
-- teachers, teacher-admins, students, filtered dashboards), a learner's
-- analytics and streak (organization, user: the first two key columns),
-- learning progress (organization, users, course). Partitioned by month
-- like `events`, so a window of days reads few partitions.
CREATE TABLE IF NOT EXISTS learner_activity_daily
(
    organization_id String,
    user_id         String,
    event_date      Date,
    course_id       String,
    class_id        String,
    department_id   String,
    events          SimpleAggregateFunction(sum, Int64),
    learning_ms     SimpleAggregateFunction(sum, Int64),
    -- every duration_ms (any category): a learner's time in a course
    time_ms         SimpleAggregateFunction(sum, Int64),
    score_sum       SimpleAggregateFunction(sum, Float64),
    score_count     SimpleAggregateFunction(sum, Int64),
    last_at         SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    INDEX idx_course_id course_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(event_date)
ORDER BY (organization_id, user_id, event_date, course_id, class_id, department_id)
SETTINGS
    -- a retried sink insert (same dedup token) must not count twice here either
    non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS learner_activity_daily_from_loads TO learner_activity_daily AS
SELECT organization_id, user_id, event_date, course_id, class_id, department_id,
       sum(_sign) AS events,
       sum(if(event_category = 'learning_progress', _sign * toInt64(ifNull(duration_ms, 0)), 0)) AS learning_ms,
       sum(_sign * toInt64(ifNull(duration_ms, 0))) AS time_ms,
       sum(_sign * toFloat64(ifNull(score, 0))) AS score_sum,
       sum(if(score IS NULL, 0, _sign)) AS score_count,
       maxIf(timestamp, _sign > 0) AS last_at
FROM event_loads WHERE _sign != 0 AND user_id != ''
GROUP BY organization_id, user_id, event_date, course_id, class_id, department_id;

INSERT INTO learner_activity_daily
SELECT organization_id, user_id, event_date, course_id, class_id, department_id,
       count(), sum(if(event_category = 'learning_progress', toInt64(ifNull(duration_ms, 0)), 0)),
       sum(toInt64(ifNull(duration_ms, 0))), sum(toFloat64(ifNull(score, 0))), countIf(score IS NOT NULL),
       max(timestamp)
FROM events FINAL WHERE user_id != ''
GROUP BY organization_id, user_id, event_date, course_id, class_id, department_id;

-- learner_skills: the concept tags of each learner's concept_mastered
-- events, first mastered when. Queries: a learner's skillsAcquired
-- (organization, user); ORDER BY organization, user, skill, which also
-- collapses a skill mastered twice.
CREATE TABLE IF NOT EXISTS learner_skills
(
    organization_id String,
    user_id         String,
    skill           String,
    first_at        SimpleAggregateFunction(min, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (organization_id, user_id, skill)
SETTINGS
    -- a retried sink insert (same dedup token) must not count twice here either
    non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS learner_skills_from_loads TO learner_skills AS
SELECT organization_id, user_id, arrayJoin(JSONExtract(properties, 'concept_tags', 'Array(String)')) AS skill,
       min(timestamp) AS first_at
FROM event_loads WHERE _sign = 1 AND event_type = 'concept_mastered'
GROUP BY organization_id, user_id, skill;

INSERT INTO learner_skills
SELECT organization_id, user_id, arrayJoin(JSONExtract(properties, 'concept_tags', 'Array(String)')) AS skill, min(timestamp)
FROM events FINAL WHERE event_type = 'concept_mastered'
GROUP BY organization_id, user_id, skill;
