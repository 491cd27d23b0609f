-- Latest-state read models of the domain facts (0014_domain_facts.sql):
-- who is enrolled in what, who completed what, which modules, which
-- assessment attempts, and the current state of users, courses and
-- classes. The analytics API (analytics/) and reports read these, never
-- domain_facts itself.
--
-- Replay-safe by construction: every measure here is min / argMin /
-- argMax over a fact's own fields, which a replayed fact (same identity,
-- same fields) cannot change, so the insert-triggered views may see a
-- fact twice. Assessment attempts, which are counted, are a
-- ReplacingMergeTree keyed by the fact's identity and read with FINAL.
-- Each view is followed by the INSERT that counts facts stored before it.

-- enrollments: one pair (user, course) per enrollment (METRICS.md), kept
-- per class it was made with, timed at its earliest enrolledAt.
-- Queries: course analytics and dashboard filters (organization, course),
-- teacher scopes (organization, class), a learner's courses (organization,
-- user: a scan of one organization's enrollments, tens of thousands of rows).
-- Hence ORDER BY organization, course, user, class.
CREATE TABLE IF NOT EXISTS enrollments
(
    organization_id String,
    course_id       String,
    user_id         String,
    class_id        String,
    enrolled_at     SimpleAggregateFunction(min, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (organization_id, course_id, user_id, class_id)
SETTINGS
    -- a retried sink insert (same dedup token) must not count twice here either
    non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS enrollments_from_facts TO enrollments AS
SELECT organization_id, course_id, user_id, class_id, min(occurred_at) AS enrolled_at
FROM domain_facts WHERE event_type = 'UserEnrolled'
GROUP BY organization_id, course_id, user_id, class_id;

INSERT INTO enrollments
SELECT organization_id, course_id, user_id, class_id, min(occurred_at)
FROM domain_facts FINAL WHERE event_type = 'UserEnrolled'
GROUP BY organization_id, course_id, user_id, class_id;

-- course_completions: a completion is the pair (user, course), timed at
-- its earliest completedAt and carrying that completion's finalScore
-- (argMin over a one-field tuple: argMin alone would skip a NULL score).
-- Queries as for enrollments, joined to them; same ORDER BY.
CREATE TABLE IF NOT EXISTS course_completions
(
    organization_id String,
    course_id       String,
    user_id         String,
    completed_at    SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    final_score     AggregateFunction(argMin, Tuple(Nullable(Float64)), DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (organization_id, course_id, user_id)
SETTINGS
    -- a retried sink insert (same dedup token) must not count twice here either
    non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS course_completions_from_facts TO course_completions AS
SELECT organization_id, course_id, user_id, min(occurred_at) AS completed_at,
       argMinState(tuple(score), occurred_at) AS final_score
FROM domain_facts WHERE event_type = 'UserCompletedCourse'
GROUP BY organization_id, course_id, user_id;

INSERT INTO course_completions
SELECT organization_id, course_id, user_id, min(occurred_at), argMinState(tuple(score), occurred_at)
FROM domain_facts FINAL WHERE event_type = 'UserCompletedCourse'
GROUP BY organization_id, course_id, user_id;

-- module_completions: (user, course, module), its earliest completion and
-- that completion's score. Queries: a course's modules (organization,
-- course), a learner's progress in a course (organization, course, user
-- across modules: contiguous after the module within the course; a few
-- modules per course keep that small).
CREATE TABLE IF NOT EXISTS module_completions
(
    organization_id String,
    course_id       String,
    module_id       String,
    user_id         String,
    completed_at    SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    score           AggregateFunction(argMin, Tuple(Nullable(Float64)), DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (organization_id, course_id, module_id, user_id)
SETTINGS
    -- a retried sink insert (same dedup token) must not count twice here either
    non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS module_completions_from_facts TO module_completions AS
SELECT organization_id, course_id, module_id, user_id, min(occurred_at) AS completed_at,
       argMinState(tuple(score), occurred_at) AS score
FROM domain_facts WHERE event_type = 'ModuleCompleted'
GROUP BY organization_id, course_id, module_id, user_id;

INSERT INTO module_completions
SELECT organization_id, course_id, module_id, user_id, min(occurred_at), argMinState(tuple(score), occurred_at)
FROM domain_facts FINAL WHERE event_type = 'ModuleCompleted'
GROUP BY organization_id, course_id, module_id, user_id;

-- assessment_attempts: one row per AssessmentCompleted fact (an attempt),
-- keyed by the fact's identity so replays collapse (read with FINAL).
-- Queries: one assessment of one organization; hence ORDER BY
-- organization, assessment, then the identity.
CREATE TABLE IF NOT EXISTS assessment_attempts
(
    organization_id String,
    assessment_id   String,
    fact_id         String,
    user_id         String,
    course_id       String,
    completed_at    DateTime64(3, 'UTC'),
    score           Nullable(Float64),
    passed          Nullable(Bool),
    time_spent_s    Nullable(Float64),
    _version        UInt64
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY (organization_id, assessment_id, fact_id)
SETTINGS
    -- a retried sink insert (same dedup token) must not count twice here either
    non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS assessment_attempts_from_facts TO assessment_attempts AS
SELECT organization_id, assessment_id, fact_id, user_id, course_id, occurred_at AS completed_at,
       score, passed, time_spent_s, _version
FROM domain_facts WHERE event_type = 'AssessmentCompleted';

INSERT INTO assessment_attempts
SELECT organization_id, assessment_id, fact_id, user_id, course_id, occurred_at, score, passed, time_spent_s, _version
FROM domain_facts FINAL WHERE event_type = 'AssessmentCompleted';

-- learners: the current state of each user (UserCreated / UserUpdated):
-- when created (UserCreated only), latest department and role (each
-- from the latest fact that carries it). Queries: total_users, department
-- scopes and filters (organization, all users: one organization's users
-- are contiguous); ORDER BY organization, user.
CREATE TABLE IF NOT EXISTS learners
(
    organization_id String,
    user_id         String,
    created_at      SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    department_id   AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    role            AggregateFunction(argMax, String, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (organization_id, user_id)
SETTINGS
    -- a retried sink insert (same dedup token) must not count twice here either
    non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS learners_from_facts TO learners AS
SELECT organization_id, user_id,
       min(if(event_type = 'UserCreated', occurred_at, NULL)) AS created_at,
       argMaxStateIf(department_id, occurred_at, department_id != '') AS department_id,
       argMaxStateIf(toString(role), occurred_at, role != '') AS role
FROM domain_facts WHERE event_type IN ('UserCreated', 'UserUpdated')
GROUP BY organization_id, user_id;

INSERT INTO learners
SELECT organization_id, user_id, min(if(event_type = 'UserCreated', occurred_at, NULL)),
       argMaxStateIf(department_id, occurred_at, department_id != ''),
       argMaxStateIf(toString(role), occurred_at, role != '')
FROM domain_facts FINAL WHERE event_type IN ('UserCreated', 'UserUpdated')
GROUP BY organization_id, user_id;

-- courses: when each course was created and the modules it lists now
-- (latest CourseCreated / CourseContentsUpdated), in order. Queries:
-- total_courses and a course's module list; ORDER BY organization, course.
CREATE TABLE IF NOT EXISTS courses
(
    organization_id String,
    course_id       String,
    created_at      SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    module_ids      AggregateFunction(argMax, Array(String), DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (organization_id, course_id)
SETTINGS
    -- a retried sink insert (same dedup token) must not count twice here either
    non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS courses_from_facts TO courses AS
SELECT organization_id, course_id,
       min(if(event_type = 'CourseCreated', occurred_at, NULL)) AS created_at,
       argMaxState(module_ids, occurred_at) AS module_ids
FROM domain_facts WHERE event_type IN ('CourseCreated', 'CourseContentsUpdated')
GROUP BY organization_id, course_id;

INSERT INTO courses
SELECT organization_id, course_id, min(if(event_type = 'CourseCreated', occurred_at, NULL)),
       argMaxState(module_ids, occurred_at)
FROM domain_facts FINAL WHERE event_type IN ('CourseCreated', 'CourseContentsUpdated')
GROUP BY organization_id, course_id;

-- classes: each class's course, department and teachers (latest
-- ClassCreated / ClassUpdated carrying each). Queries: teacher scopes
-- (organization, classes taught by one teacher: a scan of one
-- organization's classes, a few hundred rows), class filters.
CREATE TABLE IF NOT EXISTS classes
(
    organization_id String,
    class_id        String,
    course_id       AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    department_id   AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    teacher_ids     AggregateFunction(argMax, Array(String), DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (organization_id, class_id)
SETTINGS
    -- a retried sink insert (same dedup token) must not count twice here either
    non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS classes_from_facts TO classes AS
SELECT organization_id, class_id,
       argMaxStateIf(course_id, occurred_at, course_id != '') AS course_id,
       argMaxStateIf(department_id, occurred_at, department_id != '') AS department_id,
       argMaxStateIf(teacher_ids, occurred_at, notEmpty(teacher_ids)) AS teacher_ids
FROM domain_facts WHERE event_type IN ('ClassCreated', 'ClassUpdated')
GROUP BY organization_id, class_id;

INSERT INTO classes
SELECT organization_id, class_id,
       argMaxStateIf(course_id, occurred_at, course_id != ''),
       argMaxStateIf(department_id, occurred_at, department_id != ''),
       argMaxStateIf(teacher_ids, occurred_at, notEmpty(teacher_ids))
FROM domain_facts FINAL WHERE event_type IN ('ClassCreated', 'ClassUpdated')
GROUP BY organization_id, class_id;
