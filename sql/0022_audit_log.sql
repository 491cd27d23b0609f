-- audit_log: the append-only trail of who touched whose data (analytics
-- seed, security: audit trail; Event Model seed, privacy). One row per
-- read of an individual's data through the API, export, key change and
-- consent change (later: report downloads, analyst queries, erasures).
-- It names people by their ids only, never by what was read.
--
-- Queries it serves: "who looked at this learner's data?" and "what did
-- this account do?" within one organization over a period, newest first,
-- by the subscriber-admin (own organization) or system-admin; hence ORDER
-- BY organization, then time, then the actor and subject for the rest.
-- Plain MergeTree: nothing is ever replaced or collapsed (append-only).
-- PARTITION BY month with a 7-year TTL: the trail is kept as long as the
-- standard retention of the data it is about, and expires by month.
CREATE TABLE IF NOT EXISTS audit_log
(
    at              DateTime64(3, 'UTC'),
    organization_id String,
    -- the token's sub, the write key id, or `cli` for the admin commands
    actor           String,
    actor_role      LowCardinality(String),
    -- read.user_analytics, read.learning_progress, read.events, export.csv, keys.create, consent.change, ...
    action          LowCardinality(String),
    -- the user whose data it was, when one user ('' for a list over a scope)
    subject_user_id String,
    -- the route or object, and its parameters as JSON (ids and filters, no values read)
    target          String,
    detail          String,
    client_ip       String,
    request_id      String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (organization_id, at, actor, subject_user_id)
TTL toDateTime(at) + INTERVAL 2555 DAY;
