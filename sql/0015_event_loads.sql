-- event_loads: the one door into `events`, and what the activity read
-- models count from.
--
-- Why not let the read models' materialized views read `events` itself:
-- a view is triggered by every insert, while `events` only collapses
-- replays later, at merge (ReplacingMergeTree). A replayed Kafka batch
-- or a backfill re-insert would then count an event twice in every sum.
-- So the sink (streams/sink.py) and backfill write here, with `_sign`:
--   +1  an event ClickHouse does not hold yet, or the new version of one
--       whose enrichment changed (backfill);
--   -1  the old version of such a changed event (its columns as stored),
--       so the rollups take back what they counted for it;
--    0  a replay of an event stored unchanged: nothing to count.
-- The first view below copies +1 rows into `events`; the read models of
-- 0017_activity_rollups.sql add `_sign`-weighted measures. Null engine:
-- nothing is kept here, the rows only pass through the views. One insert
-- feeds both, so a crash cannot store an event without counting it.
CREATE TABLE IF NOT EXISTS event_loads AS events ENGINE = Null;

ALTER TABLE event_loads ADD COLUMN IF NOT EXISTS _sign Int8 DEFAULT 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_from_loads TO events AS
SELECT * EXCEPT _sign FROM event_loads WHERE _sign = 1;
