"""`GET /api/v1/events`: the events behind a figure, newest last, keyset-paginated
by (timestamp, event_id). The one reader of the raw `events` table: a
drill-down is narrowed by user, course, class, type and time, and asks
for rows, not figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.params import encode_cursor, iso_z, narrowing, sql_time
from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore

_FILTER_COLUMNS = {"user_id": "userId", "course_id": "courseId", "class_id": "classId", "event_type": "eventType"}


@dataclass(frozen=True)
class EventsQuery:
    scope: Scope
    limit: int
    filters: dict[str, str]  # column -> value, columns of _FILTER_COLUMNS
    start: datetime | None = None
    end: datetime | None = None
    after: list[Any] | None = None


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventId": row["event_id"],
        "eventType": row["event_type"],
        "timestamp": iso_z(row["timestamp"]),
        "userId": row["user_id"],
        "courseId": row["course_id"] or None,
        "classId": row["class_id"] or None,
        "score": None if row["score"] is None else float(row["score"]),
        "durationMs": None if row["duration_ms"] is None else int(row["duration_ms"]),
    }


async def events(store: ClickHouseStore, query: EventsQuery) -> dict[str, Any]:
    params: dict[str, Any] = {**query.scope.params, "page": query.limit + 1}
    conditions, bound = narrowing(query.filters, "timestamp", query.start, query.end)
    params.update(bound)
    if query.after is not None:
        conditions += " AND (timestamp, event_id) > (toDateTime64({after_time:String}, 3, 'UTC'), {after_id:String})"
        params["after_time"], params["after_id"] = query.after
    rows = await store.query(
        f"""SELECT event_id, event_type, timestamp, user_id, course_id, class_id, score, duration_ms
            FROM events FINAL WHERE {query.scope.users()}{conditions}
            ORDER BY timestamp, event_id LIMIT {{page:UInt32}}""",
        params,
    )
    page, more = rows[: query.limit], len(rows) > query.limit
    next_cursor = None
    if more:
        last = page[-1]
        next_cursor = encode_cursor([sql_time(datetime.fromisoformat(iso_z(last["timestamp"]).replace("Z", "+00:00"))), last["event_id"]])
    return {"items": [_item(row) for row in page], "nextCursor": next_cursor}


FILTER_PARAMETERS = _FILTER_COLUMNS
