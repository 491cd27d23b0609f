"""`GET /api/v1/learning-progress`: one row per enrollment (user, course),
as of `e` (the midnight after `until`), keyset-paginated by (userId,
courseId) (METRICS.md, Learning progress).

One query joins the enrollments of the caller's users with their
completion, module completions and activity in the course, and decides
the status in SQL so that a `status` filter still pages by keyset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.figures import MS_PER_MINUTE, rounded
from analytics.params import encode_cursor, iso_z, sql_time
from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore

STATUSES = ("not_started", "in_progress", "completed", "dropped")
_CUT = "toDateTime64({cut:String}, 3, 'UTC')"
_NEVER = "toDateTime64(0, 3, 'UTC')"


@dataclass(frozen=True)
class ProgressQuery:
    scope: Scope
    cut: datetime
    dropped_after_days: int
    limit: int
    user_id: str | None = None
    course_id: str | None = None
    status: str | None = None
    after: list[Any] | None = None

    def sql(self) -> tuple[str, dict[str, Any]]:
        scope = self.scope
        params: dict[str, Any] = {
            **scope.params,
            "cut": sql_time(self.cut),
            "dropped_days": self.dropped_after_days,
            "page": self.limit + 1,
        }
        narrowed = ""
        if self.user_id is not None:
            narrowed += " AND user_id = {user:String}"
            params["user"] = self.user_id
        if self.course_id is not None:
            narrowed += " AND course_id = {course:String}"
            params["course"] = self.course_id
        mine = f"{scope.users()}{narrowed}"
        outer = ""
        if self.status is not None:
            outer += " AND status = {status:String}"
            params["status"] = self.status
        if self.after is not None:
            outer += " AND (p.user_id, p.course_id) > ({after_user:String}, {after_course:String})"
            params["after_user"], params["after_course"] = self.after
        sql = f"""
            WITH
            pairs AS (
                SELECT organization_id, user_id, course_id, min(enrolled_at) AS enrolled_at FROM enrollments
                WHERE {mine} GROUP BY organization_id, user_id, course_id HAVING enrolled_at < {_CUT}),
            listed AS (
                SELECT organization_id, course_id, argMaxMerge(module_ids) AS modules FROM courses
                WHERE {scope.organizations()} GROUP BY organization_id, course_id),
            done AS (
                SELECT organization_id, user_id, course_id, min(completed_at) AS completed_at,
                       argMinMerge(final_score).1 AS final_score
                FROM course_completions WHERE {mine}
                GROUP BY organization_id, user_id, course_id HAVING completed_at < {_CUT}),
            modules_done AS (
                SELECT organization_id, user_id, course_id, groupArray(module_id) AS modules, max(completed_at) AS last_at
                FROM (
                    SELECT organization_id, user_id, course_id, module_id, min(completed_at) AS completed_at
                    FROM module_completions WHERE {mine}
                    GROUP BY organization_id, user_id, course_id, module_id HAVING completed_at < {_CUT})
                GROUP BY organization_id, user_id, course_id),
            activity AS (
                SELECT organization_id, user_id, course_id, sum(time_ms) AS time_ms, max(last_at) AS last_at,
                       sum(events) AS events
                FROM learner_activity_daily
                WHERE {mine} AND course_id != '' AND event_date < toDate({_CUT})
                GROUP BY organization_id, user_id, course_id HAVING events > 0)
            SELECT p.user_id AS user_id, p.course_id AS course_id, p.enrolled_at AS enrolled_at,
                   ifNull(l.modules, []) AS listed_modules, ifNull(m.modules, []) AS done_modules,
                   d.completed_at AS completed_at, d.final_score AS final_score, ifNull(a.time_ms, 0) AS time_ms,
                   a.events IS NOT NULL OR m.last_at IS NOT NULL AS active,
                   greatest(ifNull(a.last_at, {_NEVER}), ifNull(m.last_at, {_NEVER})) AS last_activity,
                   multiIf(d.completed_at IS NOT NULL, 'completed',
                           NOT active, 'not_started',
                           last_activity < {_CUT} - toIntervalDay({{dropped_days:UInt32}}), 'dropped',
                           'in_progress') AS status
            FROM pairs AS p
            LEFT JOIN listed AS l ON l.organization_id = p.organization_id AND l.course_id = p.course_id
            LEFT JOIN done AS d ON d.organization_id = p.organization_id AND d.user_id = p.user_id AND d.course_id = p.course_id
            LEFT JOIN modules_done AS m
                ON m.organization_id = p.organization_id AND m.user_id = p.user_id AND m.course_id = p.course_id
            LEFT JOIN activity AS a ON a.organization_id = p.organization_id AND a.user_id = p.user_id AND a.course_id = p.course_id
            WHERE 1{outer}
            ORDER BY p.user_id, p.course_id
            LIMIT {{page:UInt32}}
            SETTINGS join_use_nulls = 1"""
        return sql, params


def _item(row: dict[str, Any]) -> dict[str, Any]:
    listed = list(row["listed_modules"])
    completed = row["status"] == "completed"
    if completed:
        progress = 100.0
    elif listed:
        progress = 100 * len(set(listed) & set(row["done_modules"])) / len(listed)
    else:
        progress = 0.0
    return {
        "userId": row["user_id"],
        "courseId": row["course_id"],
        "progressPercentage": rounded(progress),
        "timeSpent": rounded(int(row["time_ms"]) / MS_PER_MINUTE),
        "lastAccessDate": iso_z(row["last_activity"] if row["active"] else row["enrolled_at"]),
        "completionDate": iso_z(row["completed_at"]),
        "score": rounded(None if row["final_score"] is None else float(row["final_score"])),
        "status": row["status"],
    }


async def learning_progress(store: ClickHouseStore, query: ProgressQuery) -> dict[str, Any]:
    sql, params = query.sql()
    rows = await store.query(sql, params)
    page, more = rows[: query.limit], len(rows) > query.limit
    items = [_item(row) for row in page]
    next_cursor = encode_cursor([page[-1]["user_id"], page[-1]["course_id"]]) if more else None
    return {"items": items, "nextCursor": next_cursor}
