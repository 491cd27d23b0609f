"""The read models an erasure cannot simply delete from: rows that mix the
person with others.

Per-user read models (learner_activity_daily, learner_skills,
enrollments, completions, learners, assessment attempts) hold one row per
user and lose the person's rows like any table. `activity_daily` holds
per (organization, day, department, course, class, type) the events of
everyone, with distinct users as uniqExact states, which cannot be
subtracted from. So the (organization, day) rows the person had events
on are deleted and recomputed from `events` (already without them), with
the same expressions as the migration's initial fill (sql/0017).

Racing the sink: a load into one of those days between the delete and
the recomputation's read would be counted twice (by the view and by the
recomputation). In the process that runs the sink (`lms-events up`, the
embedded default) the recomputation holds the sink's event-load lock
(streams/sink.py), so no load interleaves. Against a ClickHouse server
with separate stream workers it cannot; there each day is verified
afterwards against `events` (events and distinct users per day) and
recomputed again until it matches (ROUNDS at most; the job records
whether it did).
"""

from __future__ import annotations

from typing import Any

import orjson

from lms_events.clickhouse import ClickHouseStore
from streams.sink import EVENT_LOADS_LOCK

ROUNDS = 3
_DAYS = "event_date IN (SELECT arrayJoin(JSONExtract({days:String}, 'Array(Date)')))"
_WHERE = f"organization_id = {{org:String}} AND {_DAYS}"


async def days_of(store: ClickHouseStore, identities: dict[str, str]) -> list[str]:
    """The days the person has events on (before their rows are deleted)."""
    rows = await store.query(
        "SELECT DISTINCT toString(event_date) AS day FROM events "
        "WHERE organization_id = {org:String} AND user_id IN ({id:String}, {alias:String}) ORDER BY day",
        identities,
    )
    return [row["day"] for row in rows]


async def _recompute(store: ClickHouseStore, params: dict[str, Any]) -> None:
    await store.execute(f"DELETE FROM activity_daily WHERE {_WHERE}", params)
    # insert_deduplicate = 0: a second round may insert the very block of the first,
    # which the table's deduplication window would otherwise drop.
    await store.execute(
        f"""INSERT INTO activity_daily
            SELECT organization_id, event_date, department_id, course_id, class_id, event_type,
                   count(), uniqExactStateIf(user_id, user_id != ''),
                   sum(if(event_category = 'learning_progress', toInt64(ifNull(duration_ms, 0)), 0)),
                   sum(toFloat64(ifNull(score, 0))), countIf(score IS NOT NULL)
            FROM events FINAL WHERE {_WHERE}
            GROUP BY organization_id, event_date, department_id, course_id, class_id, event_type
            SETTINGS insert_deduplicate = 0""",
        params,
    )


async def _matches(store: ClickHouseStore, params: dict[str, Any]) -> bool:
    rollup = await store.query(
        f"SELECT toString(event_date) AS day, sum(events) AS n, uniqExactMerge(users) AS u FROM activity_daily "
        f"WHERE {_WHERE} GROUP BY day HAVING n != 0 ORDER BY day",
        params,
    )
    base = await store.query(
        f"SELECT toString(event_date) AS day, count() AS n, uniqExactIf(user_id, user_id != '') AS u FROM events FINAL "
        f"WHERE {_WHERE} GROUP BY day ORDER BY day",
        params,
    )
    return [(r["day"], int(r["n"]), int(r["u"])) for r in rollup] == [(r["day"], int(r["n"]), int(r["u"])) for r in base]


async def recompute_days(store: ClickHouseStore, organization_id: str, days: list[str]) -> dict[str, Any]:
    """activity_daily of these days recomputed from `events`; what was done, for the job's counts."""
    if not days:
        return {"days": 0, "rounds": 0, "verified": True}
    params = {"org": organization_id, "days": orjson.dumps(days).decode()}
    for round_ in range(1, ROUNDS + 1):
        async with EVENT_LOADS_LOCK:
            await _recompute(store, params)
            if await _matches(store, params):
                return {"days": len(days), "rounds": round_, "verified": True}
    return {"days": len(days), "rounds": ROUNDS, "verified": False}
