-- backfill_checkpoints: where a `lms-events backfill` run is, so an
-- interrupted run resumes after the last batch it re-inserted.
--
-- Queries it serves: the latest checkpoint of one job (job_id is a digest
-- of the backfill's scope), read once at start; hence ORDER BY job_id,
-- also the replacement key (highest _version is the current checkpoint).
-- A handful of rows: no partitions, and kept a year for the record of
-- which backfills ran.
CREATE TABLE IF NOT EXISTS backfill_checkpoints
(
    job_id          String,
    -- the scope as JSON ({"since": ..., "organization_id": ..., "everything": ...})
    scope           String,
    -- keyset cursor: the (organization_id, event_id) of the last row done
    cursor_org      String,
    cursor_event_id String,
    done            UInt64,
    finished        Bool,
    updated_at      DateTime64(3, 'UTC') DEFAULT now64(3),
    _version        UInt64
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY job_id
TTL toDateTime(updated_at) + INTERVAL 365 DAY;
