"""Report types: for each, one query over the read models (sql/0016,
sql/0017) that yields its rows, the figures its summary shows, and the
chart a PDF draws. Numbers follow METRICS.md where they overlap
(README, "Reports: what each report holds").

Every query is confined by the requester's scope (`Scope.users()`) and
narrowed by the job's parameters: `dateRange` (whole UTC days, [s, e)),
`filters` (learners, courses, classes, departments, event types). Floats
are rounded to 2 decimals and times become ISO 8601 strings once, when
rows are written (reports/rows.py), as the API does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from analytics.params import midnight, sql_time
from analytics.progress import ProgressQuery
from analytics.scope import Scope
from reports.models import Filters, Parameters

# ClickHouse's own limit on LIMIT: the transcript reuses the paged progress query whole.
_EVERYTHING = 2**31 - 1
_START = "toDateTime64({range_start:String}, 3, 'UTC')"
_END = "toDateTime64({range_end:String}, 3, 'UTC')"
_DUE = "toDateTime64({due:String}, 3, 'UTC')"
# at-risk-learners: no activity in the course for this many days (parameters.inactiveDays)
DEFAULT_INACTIVE_DAYS = 14
# engagement-trend without a dateRange: the days up to today
DEFAULT_TREND_DAYS = 30


def _list(name: str) -> str:
    """A filter list in SQL: the JSON array bound as f_<name>."""
    return f"JSONExtract({{f_{name}:String}}, 'Array(String)')"


@dataclass(frozen=True)
class Request:
    """What a query needs: who asked (their scope) and the job's parameters."""

    scope: Scope
    parameters: Parameters
    dropped_after_days: int
    now: datetime

    @property
    def filters(self) -> Filters:
        return self.parameters.filters or Filters()

    @property
    def end(self) -> datetime:
        """e: the midnight after dateRange.endDate; without a range, the midnight after today."""
        day = date.fromisoformat(self.parameters.date_range.end_date) if self.parameters.date_range else self.now.date()
        return midnight(day + timedelta(days=1))

    def bind(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            **self.scope.params,
            "range_end": sql_time(self.end),
            "range_start": "1970-01-01 00:00:00.000",
            # the learning-progress query's own (learner-transcript)
            "cut": sql_time(self.end),
            "dropped_days": self.dropped_after_days,
            # compliance: completed before the midnight after dueDate
            "due": sql_time(self.end),
        }
        if self.parameters.due_date:
            params["due"] = sql_time(midnight(date.fromisoformat(self.parameters.due_date) + timedelta(days=1)))
        if self.parameters.date_range:
            params["range_start"] = sql_time(midnight(date.fromisoformat(self.parameters.date_range.start_date)))
        # lists travel as JSON strings (read by _list): both drivers bind a String alike
        for name in ("learner_ids", "course_ids", "class_ids", "department_ids"):
            params[f"f_{name}"] = orjson.dumps(getattr(self.filters, name) or []).decode()
        return params

    def users(self) -> str:
        """Users of the scope, narrowed by filters.learnerIds and filters.departmentIds."""
        condition = self.scope.users()
        if self.filters.learner_ids:
            condition += f" AND user_id IN {_list('learner_ids')}"
        if self.filters.department_ids:
            condition += f""" AND user_id IN (SELECT user_id FROM learners WHERE {self.scope.organizations()}
                GROUP BY user_id HAVING argMaxMerge(department_id) IN {_list('department_ids')})"""
        return condition

    def courses(self, column: str = "course_id") -> str:
        return f" AND {column} IN {_list('course_ids')}" if self.filters.course_ids else ""

    def classes(self, column: str = "class_id") -> str:
        return f" AND {column} IN {_list('class_ids')}" if self.filters.class_ids else ""


@dataclass(frozen=True)
class Definition:
    id: str
    columns: tuple[str, ...]
    query: Callable[[Request], str]
    # Summary figures over the report's rows: label -> aggregate over the staged rows.
    summary: dict[str, str]
    # (label column, value column) of the PDF's bar chart.
    chart: tuple[str, str]
    # A series over time charts its latest bars in order; the others their largest values.
    chronological: bool = False


def _learner_activity(r: Request) -> str:
    active = "" if r.parameters.include_inactive else "WHERE events > 0"
    return f"""
        WITH days AS (
            SELECT user_id, event_date, sum(events) AS n, sum(learning_ms) AS learning_ms, sum(score_sum) AS score_sum,
                   sum(score_count) AS score_count, max(last_at) AS last_at
            FROM learner_activity_daily
            WHERE {r.users()} AND event_date >= toDate({_START}) AND event_date < toDate({_END}){r.courses()}{r.classes()}
            GROUP BY user_id, event_date),
        activity AS (
            SELECT user_id, sum(n) AS events, countIf(n > 0) AS active_days, sum(learning_ms) AS learning_ms,
                   sum(score_sum) AS score_sum, sum(score_count) AS score_count, maxIf(last_at, n > 0) AS last_at
            FROM days GROUP BY user_id),
        enrolled AS (
            SELECT user_id, uniqExact(course_id) AS n FROM enrollments
            WHERE {r.users()}{r.courses()} AND enrolled_at < {_END} GROUP BY user_id),
        completed AS (
            SELECT user_id, uniqExact(course_id) AS n FROM
                (SELECT user_id, course_id, min(completed_at) AS at FROM course_completions
                 WHERE {r.users()}{r.courses()} GROUP BY user_id, course_id HAVING at < {_END})
            GROUP BY user_id),
        known AS (SELECT DISTINCT user_id FROM learners WHERE {r.users()})
        SELECT k.user_id AS userId, ifNull(a.events, 0) AS events, ifNull(a.active_days, 0) AS activeDays,
               ifNull(a.learning_ms, 0) / 3600000 AS learningHours,
               if(ifNull(a.score_count, 0) = 0, NULL, a.score_sum / a.score_count) AS averageScore,
               if(ifNull(a.events, 0) > 0, a.last_at, NULL) AS lastActiveAt,
               ifNull(e.n, 0) AS coursesEnrolled, ifNull(c.n, 0) AS coursesCompleted
        FROM known AS k
        LEFT JOIN activity AS a ON a.user_id = k.user_id
        LEFT JOIN enrolled AS e ON e.user_id = k.user_id
        LEFT JOIN completed AS c ON c.user_id = k.user_id
        {active}
        ORDER BY userId
        SETTINGS join_use_nulls = 1"""


def _course_completion(r: Request) -> str:
    return f"""
        WITH listed AS (
            SELECT course_id FROM courses WHERE {r.scope.organizations()}{r.courses()}
            GROUP BY course_id HAVING min(created_at) IS NOT NULL AND min(created_at) < {_END}),
        enrolled AS (
            SELECT course_id, user_id, min(enrolled_at) AS at FROM enrollments
            WHERE {r.users()}{r.courses()}{r.classes()} GROUP BY course_id, user_id HAVING at < {_END}),
        completed AS (
            SELECT course_id, user_id, min(completed_at) AS at FROM course_completions
            WHERE {r.users()}{r.courses()} GROUP BY course_id, user_id HAVING at < {_END}),
        scores AS (
            SELECT course_id, sum(score_sum) AS score_sum, sum(score_count) AS score_count FROM learner_activity_daily
            WHERE {r.users()}{r.courses()} AND event_date < toDate({_END}) GROUP BY course_id)
        SELECT l.course_id AS courseId,
               ifNull(en.n, 0) AS enrollments, ifNull(co.n, 0) AS completions,
               if(ifNull(en.n, 0) = 0, 0, 100 * ifNull(co.n, 0) / en.n) AS completionRate,
               if(ifNull(s.score_count, 0) = 0, NULL, s.score_sum / s.score_count) AS averageScore,
               tt.hours AS averageHoursToComplete
        FROM listed AS l
        LEFT JOIN (SELECT course_id, count() AS n FROM enrolled GROUP BY course_id) AS en ON en.course_id = l.course_id
        LEFT JOIN (SELECT course_id, count() AS n FROM completed GROUP BY course_id) AS co ON co.course_id = l.course_id
        LEFT JOIN scores AS s ON s.course_id = l.course_id
        LEFT JOIN (
            SELECT c.course_id AS course_id, avg(dateDiff('millisecond', e.at, c.at) / 3600000) AS hours
            FROM completed AS c INNER JOIN enrolled AS e ON e.course_id = c.course_id AND e.user_id = c.user_id
            GROUP BY c.course_id) AS tt ON tt.course_id = l.course_id
        ORDER BY courseId
        SETTINGS join_use_nulls = 1"""


def _assessment_results(r: Request) -> str:
    return f"""
        SELECT assessment_id AS assessmentId, argMin(course_id, (completed_at, fact_id)) AS courseId,
               count() AS attempts, avg(score) AS averageScore, 100 * countIf(passed) / count() AS passRate,
               avg(time_spent_s) / 60 AS averageMinutesSpent, 1 - countIf(passed) / count() AS difficultyRating
        FROM assessment_attempts FINAL
        WHERE {r.users()}{r.courses()} AND completed_at >= {_START} AND completed_at < {_END}
        GROUP BY assessment_id ORDER BY assessmentId"""


def _learner_transcript(r: Request) -> str:
    progress_sql, _ = ProgressQuery(
        scope=r.scope, cut=r.end, dropped_after_days=r.dropped_after_days, limit=_EVERYTHING
    ).sql()
    learners = f" AND user_id IN {_list('learner_ids')}" if r.filters.learner_ids else ""
    courses = f" AND course_id IN {_list('course_ids')}" if r.filters.course_ids else ""
    return f"""
        SELECT user_id AS userId, course_id AS courseId, enrolled_at AS enrolledAt, status,
               if(status = 'completed', 100, if(length(listed_modules) = 0, 0,
                  100 * length(arrayIntersect(listed_modules, done_modules)) / length(listed_modules))) AS progressPercentage,
               time_ms / 60000 AS timeSpentMinutes,
               if(active, last_activity, enrolled_at) AS lastAccessDate,
               completed_at AS completionDate, final_score AS finalScore
        FROM ({progress_sql.replace("{page:UInt32}", str(_EVERYTHING))})
        WHERE 1{learners}{courses}
        ORDER BY userId, courseId"""

def _department_summary(r: Request) -> str:
    return f"""
        WITH people AS (
            SELECT user_id, argMaxMerge(department_id) AS department_id FROM learners WHERE {r.users()} GROUP BY user_id),
        activity AS (
            SELECT user_id, sum(events) AS events, sum(learning_ms) AS learning_ms FROM learner_activity_daily
            WHERE {r.users()} AND event_date >= toDate({_START}) AND event_date < toDate({_END}){r.courses()}{r.classes()}
            GROUP BY user_id),
        enrolled AS (
            SELECT user_id, uniqExact(course_id) AS n FROM enrollments
            WHERE {r.users()}{r.courses()} AND enrolled_at < {_END} GROUP BY user_id),
        completed AS (
            SELECT user_id, count() AS n FROM
                (SELECT user_id, course_id, min(completed_at) AS at FROM course_completions
                 WHERE {r.users()}{r.courses()} GROUP BY user_id, course_id HAVING at < {_END})
            GROUP BY user_id)
        SELECT p.department_id AS departmentId, count() AS learners, countIf(ifNull(a.events, 0) > 0) AS activeLearners,
               sum(ifNull(e.n, 0)) AS enrollments, sum(ifNull(c.n, 0)) AS completions,
               sum(ifNull(a.learning_ms, 0)) / 3600000 AS learningHours
        FROM people AS p
        LEFT JOIN activity AS a ON a.user_id = p.user_id
        LEFT JOIN enrolled AS e ON e.user_id = p.user_id
        LEFT JOIN completed AS c ON c.user_id = p.user_id
        GROUP BY departmentId ORDER BY departmentId
        SETTINGS join_use_nulls = 1"""


def _engagement_trend(r: Request) -> str:
    first = f"toDate({_START})" if r.parameters.date_range else f"toDate({_END}) - {DEFAULT_TREND_DAYS}"
    return f"""
        WITH per_user AS (
            SELECT user_id, event_date, sum(events) AS n, sum(learning_ms) AS learning_ms FROM learner_activity_daily
            WHERE {r.users()} AND event_date >= {first} AND event_date < toDate({_END}){r.courses()}{r.classes()}
            GROUP BY user_id, event_date),
        per_day AS (
            SELECT event_date, sum(n) AS events, countIf(n > 0) AS learners, sum(learning_ms) AS learning_ms
            FROM per_user GROUP BY event_date)
        SELECT d.day AS date, ifNull(p.events, 0) AS events, ifNull(p.learners, 0) AS activeLearners,
               ifNull(p.learning_ms, 0) / 3600000 AS learningHours
        FROM (SELECT {first} + number AS day FROM numbers(toUInt64(dateDiff('day', {first}, toDate({_END}))))) AS d
        LEFT JOIN per_day AS p ON p.event_date = d.day
        ORDER BY date
        SETTINGS join_use_nulls = 1"""


def _at_risk_learners(r: Request) -> str:
    days = r.parameters.inactive_days or DEFAULT_INACTIVE_DAYS
    return f"""
        SELECT userId, courseId, enrolledAt, status, progressPercentage, lastAccessDate,
               dateDiff('day', lastAccessDate, {_END}) AS daysInactive
        FROM ({_learner_transcript(r)})
        WHERE status != 'completed' AND lastAccessDate < {_END} - toIntervalDay({int(days)})
        ORDER BY daysInactive DESC, userId, courseId"""


def _compliance(r: Request) -> str:
    return f"""
        WITH people AS (SELECT DISTINCT user_id FROM learners WHERE {r.users()}),
        required AS (SELECT arrayJoin({_list('course_ids')}) AS course_id),
        enrolled AS (
            SELECT user_id, course_id, min(enrolled_at) AS at FROM enrollments
            WHERE {r.users()}{r.courses()} GROUP BY user_id, course_id),
        completed AS (
            SELECT user_id, course_id, min(completed_at) AS at FROM course_completions
            WHERE {r.users()}{r.courses()} GROUP BY user_id, course_id)
        SELECT p.user_id AS userId, q.course_id AS courseId, e.at AS enrolledAt, c.at AS completedAt,
               multiIf(c.at IS NULL, 'not-completed', c.at < {_DUE}, 'completed-on-time', 'completed-late') AS status,
               toBool(c.at IS NOT NULL AND c.at < {_DUE}) AS compliant
        FROM people AS p CROSS JOIN required AS q
        LEFT JOIN enrolled AS e ON e.user_id = p.user_id AND e.course_id = q.course_id
        LEFT JOIN completed AS c ON c.user_id = p.user_id AND c.course_id = q.course_id
        ORDER BY userId, courseId
        SETTINGS join_use_nulls = 1"""


DEFINITIONS: dict[str, Definition] = {
    definition.id: definition
    for definition in (
        Definition(
            "learner-activity",
            ("userId", "events", "activeDays", "learningHours", "averageScore", "lastActiveAt", "coursesEnrolled", "coursesCompleted"),
            _learner_activity,
            {"Learners": "count()", "Events": "sum(events)", "Learning hours": "round(sum(learningHours), 2)"},
            ("userId", "events"),
        ),
        Definition(
            "course-completion",
            ("courseId", "enrollments", "completions", "completionRate", "averageScore", "averageHoursToComplete"),
            _course_completion,
            {"Courses": "count()", "Enrollments": "sum(enrollments)", "Completions": "sum(completions)"},
            ("courseId", "completionRate"),
        ),
        Definition(
            "assessment-results",
            ("assessmentId", "courseId", "attempts", "averageScore", "passRate", "averageMinutesSpent", "difficultyRating"),
            _assessment_results,
            {"Assessments": "count()", "Attempts": "sum(attempts)"},
            ("assessmentId", "passRate"),
        ),
        Definition(
            "learner-transcript",
            ("userId", "courseId", "enrolledAt", "status", "progressPercentage", "timeSpentMinutes", "lastAccessDate", "completionDate", "finalScore"),
            _learner_transcript,
            {"Courses": "count()", "Completed": "countIf(status = 'completed')"},
            ("courseId", "progressPercentage"),
        ),
        Definition(
            "department-summary",
            ("departmentId", "learners", "activeLearners", "enrollments", "completions", "learningHours"),
            _department_summary,
            {"Departments": "count()", "Learners": "sum(learners)", "Active learners": "sum(activeLearners)"},
            ("departmentId", "activeLearners"),
        ),
        Definition(
            "engagement-trend",
            ("date", "events", "activeLearners", "learningHours"),
            _engagement_trend,
            {"Days": "count()", "Events": "sum(events)", "Learning hours": "round(sum(learningHours), 2)"},
            ("date", "events"),
            chronological=True,
        ),
        Definition(
            "at-risk-learners",
            ("userId", "courseId", "enrolledAt", "status", "progressPercentage", "lastAccessDate", "daysInactive"),
            _at_risk_learners,
            {"Enrollments at risk": "count()", "Learners": "uniqExact(userId)"},
            ("userId", "daysInactive"),
        ),
        Definition(
            "compliance",
            ("userId", "courseId", "enrolledAt", "completedAt", "status", "compliant"),
            _compliance,
            {"Required completions": "count()", "On time": "countIf(compliant)", "Missing": "countIf(status = 'not-completed')"},
            ("courseId", "compliant"),
        ),
    )
}


def request_for(scope: Scope, parameters: Parameters, dropped_after_days: int, now: datetime | None = None) -> Request:
    return Request(scope, parameters, dropped_after_days, now or datetime.now(UTC))
