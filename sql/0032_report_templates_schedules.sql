-- Report templates and schedules (report seed 001: API-ISS-027, 028,
-- 031, 032), each schedule's runs, and the notifications of scheduled
-- reports for the platform's mailer. Durable here for the same reason as
-- report_jobs (sql/0030): the embedded Redis is a cache, a restart of `up`
-- must find every template, schedule and run.
--
-- Templates and schedules are documents: `body` holds the whole object as
-- the API checked it (reports/plan_models.py), and the other columns are
-- the few fields queries filter, sort or scope on, copied out of it. One
-- column list lives in the code (reports/plan_store.py); the body is never
-- parsed by ClickHouse.
--
-- Each change (create, update, pause, resume, delete) appends the whole
-- document at a new `version` (the writer's clock in microseconds: the last
-- writer wins, as in an update in place); a delete appends `deleted = 1`.
-- ReplacingMergeTree(version) keeps only the latest row per key once parts
-- merge; until then readers take it with `ORDER BY version DESC LIMIT 1 BY
-- key`, so a merge never changes an answer.

-- report_templates. Queries: one template of one organization; the
-- templates of one organization filtered by type, owner, tag, name and
-- visibility, by (name, id). An organization holds tens to thousands of
-- templates. System templates are data (schemas/report_templates.json),
-- never stored here: the API merges them into each page by (name, id).
-- ORDER BY organization, template: one organization's templates are
-- contiguous (low to high cardinality), a template's versions adjacent.
CREATE TABLE IF NOT EXISTS report_templates
(
    organization_id String,
    template_id     String,
    version         UInt64,
    deleted         UInt8,
    name            String,
    report_type     LowCardinality(String),
    tags            Array(String),
    owner_id        String,
    visibility      LowCardinality(String),
    department_id   Nullable(String),
    created_at      DateTime64(3, 'UTC'),
    updated_at      DateTime64(3, 'UTC'),
    body            String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (organization_id, template_id)
SETTINGS
    -- a retried insert of the same change (same dedup token) is one row
    non_replicated_deduplication_window = 10000;

-- report_schedules. Queries: one schedule of one organization; the
-- schedules of one organization by (name, id), filtered by enabled,
-- template, owner; the scheduler's scan of every enabled schedule of
-- every organization (a few thousand rows: read whole, no index needed).
-- ORDER BY organization, schedule for the same reasons as templates.
-- owner_role and owner_departments: the owner's scope when the schedule
-- was last saved, which its jobs run with (as report_jobs.requester_*).
-- active_since: the instant from which occurrences count (creation, a
-- change of timing, a resume): runs missed while paused are not run.
CREATE TABLE IF NOT EXISTS report_schedules
(
    organization_id   String,
    schedule_id       String,
    version           UInt64,
    deleted           UInt8,
    name              String,
    enabled           UInt8,
    report_type       LowCardinality(String),
    template_id       Nullable(String),
    owner_id          String,
    owner_role        LowCardinality(String),
    owner_departments Array(String),
    visibility        LowCardinality(String),
    department_id     Nullable(String),
    active_since      DateTime64(3, 'UTC'),
    created_at        DateTime64(3, 'UTC'),
    updated_at        DateTime64(3, 'UTC'),
    body              String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (organization_id, schedule_id)
SETTINGS
    -- a retried insert of the same change (same dedup token) is one row
    non_replicated_deduplication_window = 10000;

-- report_schedule_runs: one row per job a schedule created. `trigger` is
-- scheduled (an occurrence, on time), catch-up (the latest occurrence
-- missed while no scheduler ran; `missed` counts the ones skipped) or
-- manual (run now). A scheduled run's job id is derived from (schedule,
-- due instant), so a replayed insert is the same row and collapses.
-- Queries: the runs of one schedule, newest first (history); the latest
-- scheduled due instant of every schedule (the scheduler); the run of one
-- job (delivery). ORDER BY organization, schedule, due, job: a schedule's
-- runs contiguous and in time order.
-- recipients: the schedule's recipients when the run was created, which
-- the notification of its report carries.
CREATE TABLE IF NOT EXISTS report_schedule_runs
(
    organization_id String,
    schedule_id     String,
    due_at          DateTime64(3, 'UTC'),
    job_id          String,
    trigger         LowCardinality(String),
    missed          UInt32,
    recipients      Array(String),
    created_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (organization_id, schedule_id, due_at, job_id)
SETTINGS
    -- a retried insert of the same run (same dedup token) is one row
    non_replicated_deduplication_window = 10000;

-- report_notifications: one row per completed report of a schedule, for
-- the platform's mailer (sending mail is not ours); the same facts go out
-- as ReportGenerated with its recipients. Queries: the notifications of
-- one organization since an instant; ORDER BY organization, time, job.
CREATE TABLE IF NOT EXISTS report_notifications
(
    organization_id String,
    job_id          String,
    schedule_id     String,
    report_type     LowCardinality(String),
    format          LowCardinality(String),
    file_path       Nullable(String),
    recipients      Array(String),
    created_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (organization_id, created_at, job_id)
SETTINGS
    -- a retried insert of the same notification (same dedup token) is one row
    non_replicated_deduplication_window = 10000;
