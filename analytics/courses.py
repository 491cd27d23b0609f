"""`GET /api/v1/courses/{courseId}/analytics`: one course, all time, over
the users of the caller's scope (METRICS.md, Course).

Sources: courses (existence, module list), enrollments,
course_completions, module_completions, learner_activity_daily. The
per-user rows of one course are few (its enrollments), so the figures
that pair them (time to complete, drop-off) are finished here.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from analytics.figures import MS_PER_HOUR, mean, percentage, rounded
from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore


def parse_time(value: Any) -> datetime:
    """A DateTime64 as either driver returns it (chDB: text, clickhouse-connect: a naive UTC datetime)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def weekly_trend(days: list[date]) -> list[dict[str, Any]]:
    """Counts per ISO week, from the first to the last week with one, zero-filled."""
    if not days:
        return []
    counts: dict[str, int] = {}
    for day in days:
        counts[iso_week(day)] = counts.get(iso_week(day), 0) + 1
    monday = min(days) - timedelta(days=min(days).weekday())
    last = iso_week(max(days))
    trend = []
    while True:
        week = iso_week(monday)
        trend.append({"week": week, "value": counts.get(week, 0)})
        if week == last:
            return trend
        monday += timedelta(days=7)


async def course_modules(store: ClickHouseStore, scope: Scope, course_id: str) -> list[str] | None:
    """The modules the course lists, in order; None when the organization has no such course."""
    rows = await store.query(
        f"""SELECT argMaxMerge(module_ids) AS modules FROM courses
            WHERE {scope.organizations()} AND course_id = {{course:String}}
            GROUP BY course_id HAVING min(created_at) IS NOT NULL""",
        {**scope.params, "course": course_id},
    )
    return list(rows[0]["modules"]) if rows else None


async def course_analytics(store: ClickHouseStore, scope: Scope, course_id: str) -> dict[str, Any] | None:
    scope.require_organization()
    modules = await course_modules(store, scope, course_id)
    if modules is None:
        return None
    params = {**scope.params, "course": course_id}
    theirs = f"{scope.users()} AND course_id = {{course:String}}"
    enrolled = {
        row["user_id"]: parse_time(row["at"])
        for row in await store.query(
            f"SELECT user_id, min(enrolled_at) AS at FROM enrollments WHERE {theirs} GROUP BY user_id", params
        )
    }
    completed = {
        row["user_id"]: parse_time(row["at"])
        for row in await store.query(
            f"SELECT user_id, min(completed_at) AS at FROM course_completions WHERE {theirs} GROUP BY user_id", params
        )
    }
    scores = await store.query(
        f"SELECT sum(score_sum) AS total, sum(score_count) AS n FROM learner_activity_daily WHERE {theirs}", params
    )
    module_rows = await store.query(
        f"""SELECT module_id, user_id, min(completed_at) AS at, argMinMerge(score).1 AS score
            FROM module_completions WHERE {theirs} GROUP BY module_id, user_id""",
        params,
    )
    to_complete = [
        (completed_at - enrolled[user]) / timedelta(milliseconds=1)
        for user, completed_at in completed.items()
        if user in enrolled
    ]
    return {
        "courseId": course_id,
        "totalEnrollments": len(enrolled),
        "totalCompletions": len(completed),
        "completionRate": rounded(percentage(len(completed), len(enrolled)) or 0.0),
        "averageScore": rounded(mean(float(scores[0]["total"] or 0), int(scores[0]["n"] or 0))) if scores else None,
        "averageTimeToComplete": rounded(mean(sum(to_complete) / MS_PER_HOUR, len(to_complete))),
        "enrollmentTrend": weekly_trend([at.date() for at in enrolled.values()]),
        "moduleAnalytics": _module_analytics(modules, module_rows),
        "dropoffPoints": _dropoff_points(modules, module_rows, set(completed)),
    }


def _module_analytics(modules: list[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    analytics = []
    for module in modules:
        mine = [row for row in rows if row["module_id"] == module]
        scored = [float(row["score"]) for row in mine if row["score"] is not None]
        analytics.append(
            {"moduleId": module, "completions": len(mine), "averageScore": rounded(mean(sum(scored), len(scored)))}
        )
    return analytics


def _dropoff_points(modules: list[str], rows: list[dict[str, Any]], completed: set[str]) -> list[dict[str, Any]]:
    latest: dict[str, tuple[datetime, str]] = {}
    for row in rows:
        if row["user_id"] in completed:
            continue
        candidate = (parse_time(row["at"]), row["module_id"])
        if row["user_id"] not in latest or candidate > latest[row["user_id"]]:
            latest[row["user_id"]] = candidate
    stopped_at = [module for _, module in latest.values()]
    return [{"moduleId": module, "learners": stopped_at.count(module)} for module in modules]
