"""`GET /api/v1/dashboard`: the seven metrics of METRICS.md over a window
and the window before it, daily charts, and a summary.

Sources: activity_daily (an organization-wide caller without filters:
distinct users come merged from uniqExact states), learner_activity_daily
(anyone narrower, or filtered: figures over a set of users), learners,
courses, enrollments and course_completions (sql/0016, sql/0017).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from analytics.figures import change_percentage, hours, mean, percentage, rounded
from analytics.params import Window, iso_z, sql_time
from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore

METRIC_TYPES = (
    "total_users",
    "active_users",
    "total_courses",
    "total_enrollments",
    "completion_rate",
    "average_score",
    "learning_hours",
)
CHART_METRICS = ("active_users", "learning_hours")

_CUT = "toDateTime64({cut:String}, 3, 'UTC')"
_WINDOW = "event_date >= toDate({window_from:String}) AND event_date < toDate({window_to:String})"


@dataclass(frozen=True)
class Request:
    scope: Scope
    window: Window
    filters: dict[str, str]

    def params(self, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = dict(self.scope.params)
        for name, value in self.filters.items():
            params[f"filter_{name}"] = value
        params.update(extra)
        return params

    def event_columns(self) -> str:
        """Events narrowed by their own columns."""
        columns = {"departmentId": "department_id", "courseId": "course_id", "classId": "class_id"}
        return "".join(f" AND {columns[name]} = {{filter_{name}:String}}" for name in self.filters)

    def filtered_users(self) -> str:
        """Users the filters admit as of {cut} (METRICS.md: filters narrow the population)."""
        organizations = self.scope.organizations()
        conditions = []
        if "departmentId" in self.filters:
            conditions.append(
                f"(organization_id, user_id) IN (SELECT organization_id, user_id FROM learners WHERE {organizations} "
                "GROUP BY organization_id, user_id HAVING argMaxMerge(department_id) = {filter_departmentId:String})"
            )
        for name, column in (("courseId", "course_id"), ("classId", "class_id")):
            if name in self.filters:
                conditions.append(
                    f"(organization_id, user_id) IN (SELECT organization_id, user_id FROM enrollments WHERE {organizations} "
                    f"AND {column} = {{filter_{name}:String}} GROUP BY organization_id, user_id HAVING min(enrolled_at) < {_CUT})"
                )
        return "".join(f" AND {condition}" for condition in conditions)

    @property
    def per_learner(self) -> bool:
        """Whether figures must be computed over users (not merged organization-wide states)."""
        return bool(self.filters) or not self.scope.organization_wide or self.scope.organization_id is None


@dataclass
class Activity:
    active_users: int = 0
    events: int = 0
    learning_ms: int = 0
    score_sum: float = 0.0
    score_count: int = 0

    @classmethod
    def of(cls, row: dict[str, Any] | None) -> Activity:
        if not row:
            return cls()
        return cls(
            int(row["active_users"]),
            int(row["events"]),
            int(row["learning_ms"]),
            float(row["score_sum"]),
            int(row["score_count"]),
        )


def _activity_sql(request: Request, by_day: bool) -> str:
    day = "event_date, " if by_day else ""
    group_by_day = " GROUP BY event_date" if by_day else ""
    if request.per_learner:
        return f"""
            SELECT {day}uniqExactIf((organization_id, user_id), user_events > 0) AS active_users,
                   sum(user_events) AS events, sum(user_learning_ms) AS learning_ms,
                   sum(user_score_sum) AS score_sum, sum(user_score_count) AS score_count
            FROM (
                SELECT {day}organization_id, user_id, sum(events) AS user_events, sum(learning_ms) AS user_learning_ms,
                       sum(score_sum) AS user_score_sum, sum(score_count) AS user_score_count
                FROM learner_activity_daily
                WHERE {request.scope.users()} AND {_WINDOW}{request.event_columns()}{request.filtered_users()}
                GROUP BY {day}organization_id, user_id
            ){group_by_day}"""
    return f"""
        SELECT {day}uniqExactMerge(users) AS active_users, sum(events) AS events, sum(learning_ms) AS learning_ms,
               sum(score_sum) AS score_sum, sum(score_count) AS score_count
        FROM activity_daily WHERE {request.scope.organizations()} AND {_WINDOW}{group_by_day}"""


async def _activity(store: ClickHouseStore, request: Request, window: Window, cut: datetime) -> Activity:
    params = request.params(**{"window_from": window.start.date().isoformat(), "window_to": window.end.date().isoformat(), "cut": sql_time(cut)})
    rows = await store.query(_activity_sql(request, by_day=False), params)
    return Activity.of(rows[0] if rows else None)


async def _daily_activity(store: ClickHouseStore, request: Request) -> dict[str, Activity]:
    window = request.window
    params = request.params(**{"window_from": window.start.date().isoformat(), "window_to": window.end.date().isoformat(), "cut": sql_time(window.end)})
    rows = await store.query(_activity_sql(request, by_day=True), params)
    return {str(row["event_date"]): Activity.of(row) for row in rows}


async def _total_users(store: ClickHouseStore, request: Request, cut: datetime) -> int:
    sql = f"""
        SELECT count() AS n FROM (
            SELECT organization_id, user_id FROM learners WHERE {request.scope.organizations()}
            GROUP BY organization_id, user_id HAVING min(created_at) < {_CUT}
        ) WHERE {request.scope.users()}{request.filtered_users()}"""
    rows = await store.query(sql, request.params(cut=sql_time(cut)))
    return int(rows[0]["n"])


async def _total_courses(store: ClickHouseStore, request: Request, cut: datetime) -> int:
    organizations = request.scope.organizations()
    conditions = ""
    if "courseId" in request.filters:
        conditions += " AND course_id = {filter_courseId:String}"
    if "classId" in request.filters:
        conditions += (
            f" AND (organization_id, course_id) IN (SELECT organization_id, argMaxMerge(course_id) FROM classes "
            f"WHERE {organizations} AND class_id = {{filter_classId:String}} GROUP BY organization_id, class_id)"
        )
    if not request.scope.organization_wide:
        conditions += (
            f" AND (organization_id, course_id) IN (SELECT organization_id, course_id FROM enrollments "
            f"WHERE {request.scope.users()} GROUP BY organization_id, course_id, user_id HAVING min(enrolled_at) < {_CUT})"
        )
    sql = f"""
        SELECT count() AS n FROM (
            SELECT organization_id, course_id FROM courses WHERE {organizations}
            GROUP BY organization_id, course_id HAVING min(created_at) < {_CUT}
        ) WHERE 1{conditions}"""
    rows = await store.query(sql, request.params(cut=sql_time(cut)))
    return int(rows[0]["n"])


async def _enrollments(store: ClickHouseStore, request: Request, cut: datetime) -> tuple[int, int]:
    """(enrollments before cut, those of them completed before cut)."""
    narrowed = ""
    if "courseId" in request.filters:
        narrowed += " AND course_id = {filter_courseId:String}"
    if "classId" in request.filters:
        narrowed += " AND class_id = {filter_classId:String}"
    sql = f"""
        SELECT count() AS enrollments,
               countIf((organization_id, course_id, user_id) IN (
                   SELECT organization_id, course_id, user_id FROM course_completions
                   WHERE {request.scope.organizations()}
                   GROUP BY organization_id, course_id, user_id HAVING min(completed_at) < {_CUT})) AS completed
        FROM (
            SELECT organization_id, course_id, user_id FROM enrollments
            WHERE {request.scope.users()}{narrowed}{request.filtered_users()}
            GROUP BY organization_id, course_id, user_id HAVING min(enrolled_at) < {_CUT}
        )"""
    rows = await store.query(sql, request.params(cut=sql_time(cut)))
    return int(rows[0]["enrollments"]), int(rows[0]["completed"])


def _completion_rate(enrolled: int, completed: int) -> float:
    return percentage(completed, enrolled) or 0.0


async def dashboard(store: ClickHouseStore, request: Request) -> dict[str, Any]:
    current, previous = request.window, request.window.previous
    values: dict[str, tuple[float | None, float | None]] = {}
    now, before = await _activity(store, request, current, current.end), await _activity(store, request, previous, current.start)
    values["active_users"] = (now.active_users, before.active_users)
    values["average_score"] = (mean(now.score_sum, now.score_count), mean(before.score_sum, before.score_count))
    values["learning_hours"] = (hours(now.learning_ms), hours(before.learning_ms))
    values["total_users"] = (await _total_users(store, request, current.end), await _total_users(store, request, current.start))
    values["total_courses"] = (
        await _total_courses(store, request, current.end),
        await _total_courses(store, request, current.start),
    )
    enrolled_now, completed_now = await _enrollments(store, request, current.end)
    enrolled_before, completed_before = await _enrollments(store, request, current.start)
    values["total_enrollments"] = (enrolled_now, enrolled_before)
    values["completion_rate"] = (
        _completion_rate(enrolled_now, completed_now),
        _completion_rate(enrolled_before, completed_before),
    )
    daily = await _daily_activity(store, request)
    days = [day.isoformat() for day in current.days]
    calculated_at = iso_z(datetime.now(UTC))
    return {
        "metrics": [
            {
                "metricType": metric,
                "value": _presented(values[metric][0]),
                "previousValue": _presented(values[metric][1]),
                "changePercentage": change_percentage(*values[metric]),
                "timeframe": current.timeframe,
                "filters": request.filters,
                "calculatedAt": calculated_at,
            }
            for metric in METRIC_TYPES
        ],
        "charts": [
            {
                "metricType": "active_users",
                "points": [{"date": day, "value": daily.get(day, Activity()).active_users} for day in days],
            },
            {
                "metricType": "learning_hours",
                "points": [{"date": day, "value": rounded(hours(daily.get(day, Activity()).learning_ms))} for day in days],
            },
        ],
        "summary": {"totalEvents": now.events, "calculatedAt": calculated_at},
    }


def _presented(value: float | None) -> float | int | None:
    return value if value is None or isinstance(value, int) else rounded(value)
