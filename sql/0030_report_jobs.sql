-- Report jobs (report seed 003, ReportJob) and the downloads of their
-- files. Durable here because the embedded Redis is a cache of live
-- state: a restart of `up` must find every job, its file and its history.

-- report_jobs: one row per state of a job. Every transition (created,
-- queued, running, restarted, completed, failed, cancelled, retried,
-- deleted) appends the whole job at a new `version`, so the rows of a job
-- are its history and the row with the highest version is its current
-- state. Nothing is updated in place: a MergeTree, never Replacing.
-- The version comes from the job's compare-and-set in Redis
-- (reports/ledger.py), which is what makes transitions exclusive.
-- Queries: one job of one organization (its latest row, or all rows for
-- its history) and the jobs of one organization, newest first, narrowed by
-- status, type and requester (a few thousand jobs an organization, a few
-- rows each). Hence ORDER BY organization, job, version: one
-- organization's jobs are contiguous, a job's versions adjacent.
-- Times are DateTime64(3, 'UTC') as everywhere; nested parts of the seed's
-- model (output.storage, progress, error) are flattened into columns,
-- `parameters` (dateRange, filters, groupBy, measures, includeInactive)
-- is kept as the JSON the API checked.
CREATE TABLE IF NOT EXISTS report_jobs
(
    organization_id       String,
    job_id                String,
    version               UInt64,
    transition            LowCardinality(String),
    deleted               UInt8,
    report_type           LowCardinality(String),
    name                  String,
    description           Nullable(String),
    parameters            String,
    output_format         LowCardinality(String),
    output_filename       Nullable(String),
    storage_provider      Nullable(String),
    storage_path          Nullable(String),
    storage_bucket        Nullable(String),
    storage_key           Nullable(String),
    storage_url           Nullable(String),
    storage_expires_at    Nullable(DateTime64(3, 'UTC')),
    status                LowCardinality(String),
    priority              LowCardinality(String),
    current_step          Nullable(String),
    percentage            Nullable(Float64),
    records_processed     Nullable(UInt64),
    total_records         Nullable(UInt64),
    scheduled_for         Nullable(DateTime64(3, 'UTC')),
    started_at            Nullable(DateTime64(3, 'UTC')),
    completed_at          Nullable(DateTime64(3, 'UTC')),
    expires_at            Nullable(DateTime64(3, 'UTC')),
    error_code            Nullable(String),
    error_message         Nullable(String),
    error_stack           Nullable(String),
    retry_count           UInt32,
    last_retry_at         Nullable(DateTime64(3, 'UTC')),
    requested_by          String,
    -- the requester's role and departments when the job was created: the
    -- worker computes the report with the scope the requester had then
    requester_role        LowCardinality(String),
    requester_departments Array(String),
    department_id         Nullable(String),
    visibility            LowCardinality(String),
    template_id           Nullable(String),
    schedule_id           Nullable(String),
    created_at            DateTime64(3, 'UTC'),
    updated_at            DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (organization_id, job_id, version)
SETTINGS
    -- a retried insert of the same transition (same dedup token) is one row
    non_replicated_deduplication_window = 10000;

-- report_downloads: who downloaded which job's file and when (audit trail;
-- the user id only, no other personal data). Queries: the downloads of one
-- job, or of an organization over time; ORDER BY organization, job, time.
CREATE TABLE IF NOT EXISTS report_downloads
(
    organization_id String,
    job_id          String,
    downloaded_by   String,
    downloaded_at   DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (organization_id, job_id, downloaded_at);
