"""`GET /api/v1/users/{userId}/analytics`: one learner, all time (METRICS.md, User).

Sources: learners (a user is known by UserCreated / UserUpdated),
enrollments, course_completions, learner_activity_daily and
learner_skills; the caller's scope is part of every query, so a user
outside it reads as unknown (404).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from analytics.figures import hours, mean, rounded
from analytics.params import iso_z
from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore


def streak_days(active_days: list[date]) -> int:
    """Consecutive days with activity ending on the last active day."""
    days = set(active_days)
    if not days:
        return 0
    day, streak = max(days), 0
    while day in days:
        streak += 1
        day -= timedelta(days=1)
    return streak


async def user_analytics(store: ClickHouseStore, scope: Scope, user_id: str) -> dict[str, Any] | None:
    scope.require_organization()
    params = {**scope.params, "user": user_id}
    mine = f"{scope.users()} AND user_id = {{user:String}}"
    if not await store.query(f"SELECT 1 AS known FROM learners WHERE {mine} LIMIT 1", params):
        return None
    enrollments = await store.query(
        f"SELECT course_id, min(enrolled_at) AS enrolled_at FROM enrollments WHERE {mine} "
        "GROUP BY course_id ORDER BY enrolled_at, course_id",
        params,
    )
    completed = await store.query(
        f"SELECT count(DISTINCT course_id) AS n FROM course_completions WHERE {mine}", params
    )
    days = await store.query(
        f"""SELECT event_date, sum(events) AS events, sum(learning_ms) AS learning_ms, sum(score_sum) AS score_sum,
                   sum(score_count) AS score_count, max(last_at) AS last_at
            FROM learner_activity_daily WHERE {mine}
            GROUP BY event_date HAVING events > 0 ORDER BY event_date""",
        params,
    )
    skills = await store.query(f"SELECT DISTINCT skill FROM learner_skills WHERE {mine} ORDER BY skill", params)
    score_sum = sum(float(day["score_sum"]) for day in days)
    score_count = sum(int(day["score_count"]) for day in days)
    return {
        "userId": user_id,
        "totalCoursesEnrolled": len(enrollments),
        "totalCoursesCompleted": int(completed[0]["n"]),
        "totalLearningHours": rounded(hours(sum(int(day["learning_ms"]) for day in days))),
        "averageScore": rounded(mean(score_sum, score_count)),
        "lastActiveDate": iso_z(max(day["last_at"] for day in days)) if days else None,
        "streakDays": streak_days([date.fromisoformat(str(day["event_date"])) for day in days]),
        "learningPath": [row["course_id"] for row in enrollments],
        "skillsAcquired": [row["skill"] for row in skills],
    }
