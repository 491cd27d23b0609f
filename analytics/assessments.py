"""`GET /api/v1/assessments/{assessmentId}/analytics` (METRICS.md, Assessment):
the attempts (AssessmentCompleted facts) of the caller's users."""

from __future__ import annotations

from typing import Any

from analytics.figures import mean, percentage, rounded
from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore

SECONDS_PER_MINUTE = 60


async def assessment_analytics(store: ClickHouseStore, scope: Scope, assessment_id: str) -> dict[str, Any] | None:
    scope.require_organization()
    params = {**scope.params, "assessment": assessment_id}
    known = await store.query(
        f"""SELECT argMin(course_id, (completed_at, fact_id)) AS course_id FROM assessment_attempts FINAL
            WHERE {scope.organizations()} AND assessment_id = {{assessment:String}} HAVING count() > 0""",
        params,
    )
    if not known:
        return None
    rows = await store.query(
        f"""SELECT count() AS attempts, sum(score) AS score_sum, count(score) AS scored, countIf(passed) AS passed,
                   sum(time_spent_s) AS time_spent_sum, count(time_spent_s) AS timed
            FROM assessment_attempts FINAL WHERE {scope.users()} AND assessment_id = {{assessment:String}}""",
        params,
    )
    row = rows[0]
    attempts = int(row["attempts"])
    pass_rate = percentage(int(row["passed"]), attempts)
    time_spent = mean(float(row["time_spent_sum"] or 0), int(row["timed"]))
    return {
        "assessmentId": assessment_id,
        "courseId": known[0]["course_id"],
        "totalAttempts": attempts,
        "averageScore": rounded(mean(float(row["score_sum"] or 0), int(row["scored"]))),
        "passRate": rounded(pass_rate),
        "averageTimeSpent": rounded(None if time_spent is None else time_spent / SECONDS_PER_MINUTE),
        "difficultyRating": rounded(None if pass_rate is None else 1 - pass_rate / 100),
    }
