-- Data-subject rights (Event Model seed, Privacy; issue 14): erasure and
-- export jobs, and the tombstones an erasure leaves.

-- erasure_tombstones: who was erased, as a keyed digest (HMAC of
-- organization and user id under a key derived from the PII secret,
-- lms_events/tombstones.py), never the id itself: a tombstone must
-- outlive the data, so it may not be data about the person. An erasure
-- writes two: the platform's id and its `pii` pseudonym, since `pii`
-- events travel and are stored under the pseudonym. The stream sink
-- drops events whose (organization, digest) is here; the gateway asks
-- Redis, which holds the same digests.
-- Queries: the sink's incremental reload (`written_at` since its last
-- look: a full scan of a small table, a few rows per erasure) and a
-- point lookup by (organization, digest); hence ORDER BY organization,
-- digest, which is also the identity (an erasure re-run replaces its
-- own rows). No TTL: events of an erased user may arrive years late.
CREATE TABLE IF NOT EXISTS erasure_tombstones
(
    organization_id String,
    digest          String,
    erasure_id      String,
    written_at      DateTime64(3, 'UTC'),
    _version        UInt64
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY (organization_id, digest);

-- privacy_jobs: erasure and export jobs, one row per state (the highest
-- `version` is the job; read with FINAL). `user_id` is the person the job
-- is about: an export keeps it (the file is theirs); an erasure keeps it
-- only until it completes, then its rows naming the person are deleted
-- and the completed row names nobody (the user_id column makes this
-- table one that erasure, export and data-usage find from system.columns
-- like any other). `counts` is JSON: rows removed per table, rollup days
-- recomputed, reports expired, Redis keys cleared.
-- Queries: one job of one organization, and at start the jobs not final
-- (a scan of a small table); ORDER BY organization, job.
CREATE TABLE IF NOT EXISTS privacy_jobs
(
    organization_id String,
    job_id          String,
    -- erasure | export
    kind            LowCardinality(String),
    user_id         String,
    -- queued | running | completed | failed
    status          LowCardinality(String),
    step            String,
    steps_done      UInt16,
    steps_total     UInt16,
    requested_by    String,
    requester_role  LowCardinality(String),
    created_at      DateTime64(3, 'UTC'),
    started_at      Nullable(DateTime64(3, 'UTC')),
    completed_at    Nullable(DateTime64(3, 'UTC')),
    expires_at      Nullable(DateTime64(3, 'UTC')),
    counts          String,
    error           String,
    -- an export's archive, relative to the data dir
    file_path       String,
    file_size       UInt64,
    version         UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (organization_id, job_id);
