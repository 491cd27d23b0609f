-- Analyst SQL (analytics/analyst/): the documented tables and their
-- descriptions, and the audit of every query.
--
-- The descriptions are ClickHouse COMMENTs, so one text serves the data
-- dictionary (GET /api/v1/query/schema reads system.columns), DESCRIBE
-- and the API docs. The tables listed here are the ones analysts may read
-- (analytics/analyst/catalog.py: ANALYST_TABLES); every one has
-- organization_id, by which the engine confines each query.
--
-- analyst_queries: one row per query. Queries it serves: a
-- subscriber-admin reads their organization's audit (through analyst SQL
-- itself), newest first; hence ORDER BY organization, time. Kept 400 days.
CREATE TABLE IF NOT EXISTS analyst_queries
(
    organization_id String,
    query_id        String,
    started_at      DateTime64(3, 'UTC'),
    sub             String,
    role            LowCardinality(String),
    sql             String CODEC(ZSTD(3)),
    params          String CODEC(ZSTD(3)),
    format          LowCardinality(String),
    status          LowCardinality(String),
    error           String,
    result_rows     UInt64,
    duration_ms     Float64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (organization_id, started_at, query_id)
TTL toDateTime(started_at) + toIntervalDay(400);

-- analyst_users: the ClickHouse users `lms-events analysts create` made on a
-- ClickHouse server (analytics/analyst/server_users.py), so `list` knows
-- each one's organization and `revoke` what to drop. Bookkeeping, not an
-- analyst table. Queries: all of them or one organization's (a handful);
-- ORDER BY the user name, which is the identity; the highest _version is
-- the user's state.
CREATE TABLE IF NOT EXISTS analyst_users
(
    user_name       String,
    organization_id String,
    name            String,
    created_at      DateTime64(3, 'UTC'),
    revoked_at      Nullable(DateTime64(3, 'UTC')),
    _version        UInt64
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY user_name;

ALTER TABLE events MODIFY COMMENT 'Learning and interaction events, one row per accepted event (ReplacingMergeTree: FINAL collapses a reloaded event)';
ALTER TABLE events
    COMMENT COLUMN event_id 'the event\'s id as the client sent it (UUID or evt_ + 16 hex digits); unique per organization',
    COMMENT COLUMN event_type 'snake_case event type of the taxonomy, e.g. game_stage_complete (GET /v1/schemas)',
    COMMENT COLUMN event_category 'the taxonomy category of event_type, e.g. learning_progress, interaction',
    COMMENT COLUMN timestamp 'when the event happened, as the client said (UTC, ms)',
    COMMENT COLUMN received_at 'when the gateway received it (UTC, ms)',
    COMMENT COLUMN is_late 'true when it arrived more than 24 h after timestamp (offline sync)',
    COMMENT COLUMN client_ip 'the client IP truncated to /24 (IPv4) or /48 (IPv6); empty when not kept',
    COMMENT COLUMN organization_id 'the organization (tenant) the event belongs to; analyst queries see only their own',
    COMMENT COLUMN user_id 'the platform\'s user id (a pseudonym for pii events); empty for anonymous events',
    COMMENT COLUMN session_id 'the client session the event was posted in',
    COMMENT COLUMN privacy_level 'standard, sensitive, pii or system: decides retention and anonymization',
    COMMENT COLUMN retention_days 'days the row is kept after timestamp (TTL)',
    COMMENT COLUMN platform 'web, ios, android, unity, ... as the client said',
    COMMENT COLUMN device_info 'device details as sent (JSON text)',
    COMMENT COLUMN context 'page, app and campaign context as sent (JSON text)',
    COMMENT COLUMN properties 'the type\'s properties as sent (JSON text; read with JSONExtract*)',
    COMMENT COLUMN course_id 'course of the event, sent or enriched; empty when unknown',
    COMMENT COLUMN class_id 'class of the event, sent or enriched; empty when unknown',
    COMMENT COLUMN enrollment_id 'enrollment of the event, enriched; empty when unknown',
    COMMENT COLUMN department_id 'the user\'s department, enriched; empty when unknown',
    COMMENT COLUMN user_role 'the user\'s role, enriched (student, teacher, ...)',
    COMMENT COLUMN content_type 'type of the content the event is about, enriched (video, quiz, game, ...)',
    COMMENT COLUMN score 'score of the event (properties.score), when it has one',
    COMMENT COLUMN duration_ms 'duration of the activity in ms (properties.duration_ms or time spent), when it has one',
    COMMENT COLUMN enrichment_missing 'references enrichment could not resolve yet (backfill fills them)',
    COMMENT COLUMN event_date 'UTC day of timestamp',
    COMMENT COLUMN event_week 'ISO week of timestamp, e.g. 2026-W05',
    COMMENT COLUMN event_month 'month of timestamp, e.g. 2026-01',
    COMMENT COLUMN _version 'load version: of two rows with one event_id the higher is current (read with FINAL)';

ALTER TABLE perf_events MODIFY COMMENT 'Performance and error events, one row per accepted event, kept at most 30 days';
ALTER TABLE perf_events
    COMMENT COLUMN event_id 'the event\'s id as the client sent it (UUID or evt_ + 16 hex digits); unique per organization',
    COMMENT COLUMN event_type 'snake_case event type of the taxonomy, e.g. game_stage_complete (GET /v1/schemas)',
    COMMENT COLUMN event_category 'the taxonomy category of event_type, e.g. learning_progress, interaction',
    COMMENT COLUMN timestamp 'when the event happened, as the client said (UTC, ms)',
    COMMENT COLUMN received_at 'when the gateway received it (UTC, ms)',
    COMMENT COLUMN is_late 'true when it arrived more than 24 h after timestamp (offline sync)',
    COMMENT COLUMN client_ip 'the client IP truncated to /24 (IPv4) or /48 (IPv6); empty when not kept',
    COMMENT COLUMN organization_id 'the organization (tenant) the event belongs to; analyst queries see only their own',
    COMMENT COLUMN user_id 'the platform\'s user id (a pseudonym for pii events); empty for anonymous events',
    COMMENT COLUMN session_id 'the client session the event was posted in',
    COMMENT COLUMN privacy_level 'standard, sensitive, pii or system: decides retention and anonymization',
    COMMENT COLUMN retention_days 'days the row is kept after timestamp (TTL)',
    COMMENT COLUMN platform 'web, ios, android, unity, ... as the client said',
    COMMENT COLUMN device_info 'device details as sent (JSON text)',
    COMMENT COLUMN context 'page, app and campaign context as sent (JSON text)',
    COMMENT COLUMN properties 'the type\'s properties as sent (JSON text; read with JSONExtract*)',
    COMMENT COLUMN course_id 'course of the event, sent or enriched; empty when unknown',
    COMMENT COLUMN class_id 'class of the event, sent or enriched; empty when unknown',
    COMMENT COLUMN enrollment_id 'enrollment of the event, enriched; empty when unknown',
    COMMENT COLUMN department_id 'the user\'s department, enriched; empty when unknown',
    COMMENT COLUMN user_role 'the user\'s role, enriched (student, teacher, ...)',
    COMMENT COLUMN content_type 'type of the content the event is about, enriched (video, quiz, game, ...)',
    COMMENT COLUMN score 'score of the event (properties.score), when it has one',
    COMMENT COLUMN duration_ms 'duration of the activity in ms (properties.duration_ms or time spent), when it has one',
    COMMENT COLUMN enrichment_missing 'references enrichment could not resolve yet (backfill fills them)',
    COMMENT COLUMN event_date 'UTC day of timestamp',
    COMMENT COLUMN event_week 'ISO week of timestamp, e.g. 2026-W05',
    COMMENT COLUMN event_month 'month of timestamp, e.g. 2026-01',
    COMMENT COLUMN _version 'load version: of two rows with one event_id the higher is current (read with FINAL)',
    COMMENT COLUMN is_error 'true for error events (also sent to the alerts topic)';

ALTER TABLE bi_events MODIFY COMMENT 'Business events, one row per accepted event';
ALTER TABLE bi_events
    COMMENT COLUMN event_id 'the event\'s id as the client sent it (UUID or evt_ + 16 hex digits); unique per organization',
    COMMENT COLUMN event_type 'snake_case event type of the taxonomy, e.g. game_stage_complete (GET /v1/schemas)',
    COMMENT COLUMN event_category 'the taxonomy category of event_type, e.g. learning_progress, interaction',
    COMMENT COLUMN timestamp 'when the event happened, as the client said (UTC, ms)',
    COMMENT COLUMN received_at 'when the gateway received it (UTC, ms)',
    COMMENT COLUMN is_late 'true when it arrived more than 24 h after timestamp (offline sync)',
    COMMENT COLUMN client_ip 'the client IP truncated to /24 (IPv4) or /48 (IPv6); empty when not kept',
    COMMENT COLUMN organization_id 'the organization (tenant) the event belongs to; analyst queries see only their own',
    COMMENT COLUMN user_id 'the platform\'s user id (a pseudonym for pii events); empty for anonymous events',
    COMMENT COLUMN session_id 'the client session the event was posted in',
    COMMENT COLUMN privacy_level 'standard, sensitive, pii or system: decides retention and anonymization',
    COMMENT COLUMN retention_days 'days the row is kept after timestamp (TTL)',
    COMMENT COLUMN platform 'web, ios, android, unity, ... as the client said',
    COMMENT COLUMN device_info 'device details as sent (JSON text)',
    COMMENT COLUMN context 'page, app and campaign context as sent (JSON text)',
    COMMENT COLUMN properties 'the type\'s properties as sent (JSON text; read with JSONExtract*)',
    COMMENT COLUMN course_id 'course of the event, sent or enriched; empty when unknown',
    COMMENT COLUMN class_id 'class of the event, sent or enriched; empty when unknown',
    COMMENT COLUMN enrollment_id 'enrollment of the event, enriched; empty when unknown',
    COMMENT COLUMN department_id 'the user\'s department, enriched; empty when unknown',
    COMMENT COLUMN user_role 'the user\'s role, enriched (student, teacher, ...)',
    COMMENT COLUMN content_type 'type of the content the event is about, enriched (video, quiz, game, ...)',
    COMMENT COLUMN score 'score of the event (properties.score), when it has one',
    COMMENT COLUMN duration_ms 'duration of the activity in ms (properties.duration_ms or time spent), when it has one',
    COMMENT COLUMN enrichment_missing 'references enrichment could not resolve yet (backfill fills them)',
    COMMENT COLUMN event_date 'UTC day of timestamp',
    COMMENT COLUMN event_week 'ISO week of timestamp, e.g. 2026-W05',
    COMMENT COLUMN event_month 'month of timestamp, e.g. 2026-01',
    COMMENT COLUMN _version 'load version: of two rows with one event_id the higher is current (read with FINAL)';

ALTER TABLE domain_facts MODIFY COMMENT 'Every domain event (UserCreated, UserEnrolled, CourseCreated, ModuleCompleted, AssessmentCompleted, ...) as a fact';
ALTER TABLE domain_facts
    COMMENT COLUMN organization_id 'the organization (tenant); analyst queries see only their own',
    COMMENT COLUMN event_type 'domain event type, e.g. UserEnrolled',
    COMMENT COLUMN fact_id 'the fact\'s identity (eventId, or sha256: digest of its content)',
    COMMENT COLUMN occurred_at 'the fact\'s own time (enrolledAt, completedAt, startedAt, publishedAt), else occurredAt',
    COMMENT COLUMN user_id 'the user it is about, if any',
    COMMENT COLUMN course_id 'the course it is about, if any',
    COMMENT COLUMN class_id 'the class it is about, if any',
    COMMENT COLUMN module_id 'the module (ModuleCompleted)',
    COMMENT COLUMN assessment_id 'the assessment (AssessmentStarted/Completed)',
    COMMENT COLUMN department_id 'the department (UserCreated/UserUpdated, ClassCreated/Updated)',
    COMMENT COLUMN score 'finalScore of UserCompletedCourse, score of ModuleCompleted / AssessmentCompleted',
    COMMENT COLUMN passed 'passed of AssessmentCompleted',
    COMMENT COLUMN time_spent_s 'timeSpent of AssessmentCompleted, seconds',
    COMMENT COLUMN module_ids 'module ids of CourseCreated / CourseContentsUpdated, in order',
    COMMENT COLUMN teacher_ids 'teacherIds of ClassCreated / ClassUpdated',
    COMMENT COLUMN role 'the user\'s role (UserCreated / UserUpdated)',
    COMMENT COLUMN payload 'the domain event as published (JSON text)',
    COMMENT COLUMN _version 'load version: of two rows with one fact_id the higher is current (FINAL)';

ALTER TABLE enrollments MODIFY COMMENT 'One row per (user, course, class) enrollment; enrolled_at is the earliest enrolledAt (AggregatingMergeTree: GROUP BY and min(enrolled_at))';
ALTER TABLE enrollments
    COMMENT COLUMN organization_id 'the organization (tenant); analyst queries see only their own',
    COMMENT COLUMN course_id 'the course',
    COMMENT COLUMN user_id 'the enrolled user',
    COMMENT COLUMN class_id 'the class it was made with; empty without one',
    COMMENT COLUMN enrolled_at 'earliest enrolledAt of the pair (aggregate with min)';

ALTER TABLE course_completions MODIFY COMMENT 'One row per (user, course) completion (AggregatingMergeTree)';
ALTER TABLE course_completions
    COMMENT COLUMN organization_id 'the organization (tenant); analyst queries see only their own',
    COMMENT COLUMN course_id 'the course',
    COMMENT COLUMN user_id 'the user',
    COMMENT COLUMN completed_at 'earliest completedAt (aggregate with min)',
    COMMENT COLUMN final_score 'finalScore of that completion: tupleElement(argMinMerge(final_score), 1)';

ALTER TABLE module_completions MODIFY COMMENT 'One row per (user, course, module) completion (AggregatingMergeTree)';
ALTER TABLE module_completions
    COMMENT COLUMN organization_id 'the organization (tenant); analyst queries see only their own',
    COMMENT COLUMN course_id 'the course',
    COMMENT COLUMN module_id 'the module',
    COMMENT COLUMN user_id 'the user',
    COMMENT COLUMN completed_at 'earliest completion (aggregate with min)',
    COMMENT COLUMN score 'score of that completion: tupleElement(argMinMerge(score), 1)';

ALTER TABLE assessment_attempts MODIFY COMMENT 'One row per AssessmentCompleted (an attempt); read with FINAL';
ALTER TABLE assessment_attempts
    COMMENT COLUMN organization_id 'the organization (tenant); analyst queries see only their own',
    COMMENT COLUMN assessment_id 'the assessment',
    COMMENT COLUMN fact_id 'the attempt\'s fact identity',
    COMMENT COLUMN user_id 'who attempted',
    COMMENT COLUMN course_id 'the course, if sent',
    COMMENT COLUMN completed_at 'when the attempt completed',
    COMMENT COLUMN score 'the attempt\'s score, if sent',
    COMMENT COLUMN passed 'whether it passed, if sent',
    COMMENT COLUMN time_spent_s 'seconds spent, if sent',
    COMMENT COLUMN _version 'load version (FINAL keeps the highest)';

ALTER TABLE learners MODIFY COMMENT 'Current state of each user from UserCreated / UserUpdated (AggregatingMergeTree: GROUP BY user_id)';
ALTER TABLE learners
    COMMENT COLUMN organization_id 'the organization (tenant); analyst queries see only their own',
    COMMENT COLUMN user_id 'the user',
    COMMENT COLUMN created_at 'when UserCreated happened (aggregate with min)',
    COMMENT COLUMN department_id 'latest department: argMaxMerge(department_id)',
    COMMENT COLUMN role 'latest role: argMaxMerge(role)';

ALTER TABLE courses MODIFY COMMENT 'Each course: creation time and current module list (AggregatingMergeTree: GROUP BY course_id)';
ALTER TABLE courses
    COMMENT COLUMN organization_id 'the organization (tenant); analyst queries see only their own',
    COMMENT COLUMN course_id 'the course',
    COMMENT COLUMN created_at 'when CourseCreated happened (aggregate with min)',
    COMMENT COLUMN module_ids 'current ordered module ids: argMaxMerge(module_ids)';

ALTER TABLE classes MODIFY COMMENT 'Each class: course, department, teachers (AggregatingMergeTree: GROUP BY class_id)';
ALTER TABLE classes
    COMMENT COLUMN organization_id 'the organization (tenant); analyst queries see only their own',
    COMMENT COLUMN class_id 'the class',
    COMMENT COLUMN course_id 'latest course: argMaxMerge(course_id)',
    COMMENT COLUMN department_id 'latest department: argMaxMerge(department_id)',
    COMMENT COLUMN teacher_ids 'latest teachers: argMaxMerge(teacher_ids)';

ALTER TABLE activity_daily MODIFY COMMENT 'Events per organization, UTC day, department, course, class and type (AggregatingMergeTree: sum the measures, uniqExactMerge(users))';
ALTER TABLE activity_daily
    COMMENT COLUMN organization_id 'the organization (tenant); analyst queries see only their own',
    COMMENT COLUMN event_date 'UTC day',
    COMMENT COLUMN department_id 'department of the events; empty when unknown',
    COMMENT COLUMN course_id 'course of the events; empty when unknown',
    COMMENT COLUMN class_id 'class of the events; empty when unknown',
    COMMENT COLUMN event_type 'event type',
    COMMENT COLUMN events 'number of events (sum)',
    COMMENT COLUMN users 'distinct users: uniqExactMerge(users)',
    COMMENT COLUMN learning_ms 'ms of learning_progress events (sum)',
    COMMENT COLUMN score_sum 'sum of scores (sum; divide by score_count)',
    COMMENT COLUMN score_count 'events with a score (sum)';

ALTER TABLE learner_activity_daily MODIFY COMMENT 'Events per user, UTC day, course, class and department (AggregatingMergeTree: sum the measures)';
ALTER TABLE learner_activity_daily
    COMMENT COLUMN organization_id 'the organization (tenant); analyst queries see only their own',
    COMMENT COLUMN user_id 'the user',
    COMMENT COLUMN event_date 'UTC day',
    COMMENT COLUMN course_id 'course; empty when unknown',
    COMMENT COLUMN class_id 'class; empty when unknown',
    COMMENT COLUMN department_id 'department; empty when unknown',
    COMMENT COLUMN events 'number of events (sum)',
    COMMENT COLUMN learning_ms 'ms of learning_progress events (sum)',
    COMMENT COLUMN time_ms 'ms of every event with a duration (sum)',
    COMMENT COLUMN score_sum 'sum of scores (sum)',
    COMMENT COLUMN score_count 'events with a score (sum)',
    COMMENT COLUMN last_at 'time of the latest event (max)';

ALTER TABLE learner_skills MODIFY COMMENT 'Concept tags each learner mastered (concept_mastered events)';
ALTER TABLE learner_skills
    COMMENT COLUMN organization_id 'the organization (tenant); analyst queries see only their own',
    COMMENT COLUMN user_id 'the user',
    COMMENT COLUMN skill 'a concept tag',
    COMMENT COLUMN first_at 'first mastered (aggregate with min)';

ALTER TABLE analyst_queries MODIFY COMMENT 'The audit of analyst SQL: one row per query sent to POST /api/v1/query, refused ones included';
ALTER TABLE analyst_queries
    COMMENT COLUMN organization_id 'the organization the query was confined to; empty for an unconfined system-admin',
    COMMENT COLUMN query_id 'id of the query (also in the answer\'s X-Query-Id header)',
    COMMENT COLUMN started_at 'when it was received (UTC, ms)',
    COMMENT COLUMN sub 'who sent it (token sub)',
    COMMENT COLUMN role 'their role',
    COMMENT COLUMN sql 'the SQL as sent',
    COMMENT COLUMN params 'its parameters (JSON text)',
    COMMENT COLUMN format 'answer format asked for',
    COMMENT COLUMN status 'ok, refused (the guard), limit (a limit was exceeded) or failed (ClickHouse refused it)',
    COMMENT COLUMN error 'why it was refused or failed; empty when ok',
    COMMENT COLUMN result_rows 'rows returned',
    COMMENT COLUMN duration_ms 'time to answer, ms';
