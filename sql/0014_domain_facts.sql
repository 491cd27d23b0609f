-- domain_facts: every domain event (user, course, class and assessment
-- topics), stored as a fact, besides feeding the reference entities.
-- Enrollments, completions, module completions and assessment attempts
-- are counted from here (through the read models of 0016_learning_facts.sql).
--
-- Identity: `fact_id` is the event's `eventId` when the producer sent one,
-- else a digest of its canonical content as the producer sent it (before
-- the gateway stamps organizationId / occurredAt), computed by
-- lms_events/domain_identity.py (the gateway publishes it as eventId);
-- so a replayed or re-posted fact is the same row. Rows: streams/facts.py.
--
-- Queries it serves: the read-model views below it (insert-triggered, one
-- family each), analyst SQL and per-user export. ORDER BY (organization,
-- type, fact_id) is the identity, so ReplacingMergeTree collapses replays;
-- organization and type first because every reader asks for one type of
-- one organization. No PARTITION BY time: a fact re-posted without
-- occurredAt gets a new stamped time but the same identity, and must land
-- in the same partition to collapse. No TTL: facts are the record of who
-- enrolled and completed what, kept as long as the organization's data.
CREATE TABLE IF NOT EXISTS domain_facts
(
    organization_id String,
    event_type      LowCardinality(String),
    fact_id         String,
    -- the fact's own time (enrolledAt, completedAt, startedAt, ...), else occurredAt (METRICS.md, Sources)
    occurred_at     DateTime64(3, 'UTC'),
    user_id         String,
    course_id       String,
    class_id        String,
    module_id       String,
    assessment_id   String,
    department_id   String,
    -- finalScore of UserCompletedCourse, score of ModuleCompleted / AssessmentCompleted
    score           Nullable(Float64),
    passed          Nullable(Bool),
    -- timeSpent of AssessmentCompleted, seconds
    time_spent_s    Nullable(Float64),
    -- ordered module ids of CourseCreated / CourseContentsUpdated contents
    module_ids      Array(String),
    -- teacherIds of ClassCreated / ClassUpdated
    teacher_ids     Array(String),
    role            LowCardinality(String),
    -- the domain event as the gateway published it (JSON)
    payload         String CODEC(ZSTD(3)),
    _version        UInt64
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY (organization_id, event_type, fact_id)
SETTINGS
    -- dedup tokens of retried sink inserts need a window on non-replicated tables
    non_replicated_deduplication_window = 10000;
