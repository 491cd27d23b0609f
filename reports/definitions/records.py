"""The queries of each report at its own grain (no groupBy): one per report
type, over the read models (sql/0016, sql/0017, sql/0031), yielding the
report's rows. Numbers follow METRICS.md where they overlap (README,
"Reports: what each report holds"). Floats are rounded to 2 decimals and
times become ISO 8601 strings once, when rows are written (reports/rows.py).
"""

from __future__ import annotations

from analytics.progress import ProgressQuery
from reports.definitions.request import DUE, END, START, Request, listed

# ClickHouse's own limit on LIMIT: the transcript reuses the paged progress query whole.
_EVERYTHING = 2**31 - 1
# engagement-trend without a dateRange: the days up to today
DEFAULT_TREND_DAYS = 30


def learner_activity(r: Request) -> str:
    active = "" if r.parameters.include_inactive else "WHERE events > 0"
    return f"""
        WITH days AS (
            SELECT user_id, event_date, sum(events) AS n, sum(learning_ms) AS learning_ms, sum(score_sum) AS score_sum,
                   sum(score_count) AS score_count, max(last_at) AS last_at
            FROM learner_activity_daily
            WHERE {r.users()} AND event_date >= toDate({START}) AND event_date < toDate({END}){r.courses()}{r.classes()}
            GROUP BY user_id, event_date),
        activity AS (
            SELECT user_id, sum(n) AS events, countIf(n > 0) AS active_days, sum(learning_ms) AS learning_ms,
                   sum(score_sum) AS score_sum, sum(score_count) AS score_count, maxIf(last_at, n > 0) AS last_at
            FROM days GROUP BY user_id),
        enrolled AS (
            SELECT user_id, uniqExact(course_id) AS n FROM enrollments
            WHERE {r.users()}{r.courses()} AND enrolled_at < {END} GROUP BY user_id),
        completed AS (
            SELECT user_id, uniqExact(course_id) AS n FROM
                (SELECT user_id, course_id, min(completed_at) AS at FROM course_completions
                 WHERE {r.users()}{r.courses()} GROUP BY user_id, course_id HAVING at < {END})
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


def course_completion(r: Request) -> str:
    return f"""
        WITH listed AS (
            SELECT course_id FROM courses WHERE {r.scope.organizations()}{r.courses()}
            GROUP BY course_id HAVING min(created_at) IS NOT NULL AND min(created_at) < {END}),
        enrolled AS (
            SELECT course_id, user_id, min(enrolled_at) AS at FROM enrollments
            WHERE {r.users()}{r.courses()}{r.classes()} GROUP BY course_id, user_id HAVING at < {END}),
        completed AS (
            SELECT course_id, user_id, min(completed_at) AS at FROM course_completions
            WHERE {r.users()}{r.courses()} GROUP BY course_id, user_id HAVING at < {END}),
        scores AS (
            SELECT course_id, sum(score_sum) AS score_sum, sum(score_count) AS score_count FROM learner_activity_daily
            WHERE {r.users()}{r.courses()} AND event_date < toDate({END}) GROUP BY course_id)
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


def assessment_results(r: Request) -> str:
    return f"""
        SELECT assessment_id AS assessmentId, argMin(course_id, (completed_at, fact_id)) AS courseId,
               count() AS attempts, avg(score) AS averageScore, 100 * countIf(passed) / count() AS passRate,
               avg(time_spent_s) / 60 AS averageMinutesSpent, 1 - countIf(passed) / count() AS difficultyRating
        FROM assessment_attempts FINAL
        WHERE {r.users()}{r.courses()} AND completed_at >= {START} AND completed_at < {END}
        GROUP BY assessment_id ORDER BY assessmentId"""


def learner_transcript(r: Request) -> str:
    progress_sql, _ = ProgressQuery(
        scope=r.scope, cut=r.end, dropped_after_days=r.dropped_after_days, limit=_EVERYTHING
    ).sql()
    learners = f" AND user_id IN {listed('learner_ids')}" if r.filters.learner_ids else ""
    courses = f" AND course_id IN {listed('course_ids')}" if r.filters.course_ids else ""
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

def department_summary(r: Request) -> str:
    return f"""
        WITH people AS (
            SELECT user_id, argMaxMerge(department_id) AS department_id FROM learners WHERE {r.users()} GROUP BY user_id),
        activity AS (
            SELECT user_id, sum(events) AS events, sum(learning_ms) AS learning_ms FROM learner_activity_daily
            WHERE {r.users()} AND event_date >= toDate({START}) AND event_date < toDate({END}){r.courses()}{r.classes()}
            GROUP BY user_id),
        enrolled AS (
            SELECT user_id, uniqExact(course_id) AS n FROM enrollments
            WHERE {r.users()}{r.courses()} AND enrolled_at < {END} GROUP BY user_id),
        completed AS (
            SELECT user_id, count() AS n FROM
                (SELECT user_id, course_id, min(completed_at) AS at FROM course_completions
                 WHERE {r.users()}{r.courses()} GROUP BY user_id, course_id HAVING at < {END})
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


def trend_first(r: Request) -> str:
    """The first day of a trend: the range's, or DEFAULT_TREND_DAYS before its end."""
    return f"toDate({START})" if r.parameters.date_range else f"toDate({END}) - {DEFAULT_TREND_DAYS}"


def engagement_trend(r: Request) -> str:
    first = trend_first(r)
    return f"""
        WITH per_user AS (
            SELECT user_id, event_date, sum(events) AS n, sum(learning_ms) AS learning_ms FROM learner_activity_daily
            WHERE {r.users()} AND event_date >= {first} AND event_date < toDate({END}){r.courses()}{r.classes()}
            GROUP BY user_id, event_date),
        per_day AS (
            SELECT event_date, sum(n) AS events, countIf(n > 0) AS learners, sum(learning_ms) AS learning_ms
            FROM per_user GROUP BY event_date)
        SELECT d.day AS date, ifNull(p.events, 0) AS events, ifNull(p.learners, 0) AS activeLearners,
               ifNull(p.learning_ms, 0) / 3600000 AS learningHours
        FROM (SELECT {first} + number AS day FROM numbers(toUInt64(dateDiff('day', {first}, toDate({END}))))) AS d
        LEFT JOIN per_day AS p ON p.event_date = d.day
        ORDER BY date
        SETTINGS join_use_nulls = 1"""


def at_risk_learners(r: Request) -> str:
    """Enrollments not completed that are inactive, have falling scores, or both (README, "at-risk-learners").

    Falling scores: over the learner's UTC days with scored events in the course before the range's end,
    the mean score of the latest `recentScoreDays` days is at least `scoreDrop` points below the mean of
    the days before them (means over events, as averageScore; at least one earlier day needed)."""
    return f"""
        WITH score_days AS (
            SELECT user_id, course_id, event_date, sum(score_sum) AS s, sum(score_count) AS n FROM learner_activity_daily
            WHERE {r.users()}{r.courses()} AND event_date < toDate({END})
            GROUP BY user_id, course_id, event_date HAVING n > 0),
        trend AS (
            SELECT user_id, course_id, sumIf(s, k <= {{recent_days:UInt32}}) / sumIf(n, k <= {{recent_days:UInt32}}) AS recent,
                   if(countIf(k > {{recent_days:UInt32}}) = 0, NULL,
                      sumIf(s, k > {{recent_days:UInt32}}) / sumIf(n, k > {{recent_days:UInt32}})) AS earlier
            FROM (SELECT *, row_number() OVER (PARTITION BY user_id, course_id ORDER BY event_date DESC) AS k FROM score_days)
            GROUP BY user_id, course_id),
        open AS (
            SELECT userId, courseId, enrolledAt, status, progressPercentage, lastAccessDate,
                   dateDiff('day', lastAccessDate, {END}) AS daysInactive,
                   lastAccessDate < {END} - toIntervalDay({{inactive_days:UInt32}}) AS inactive
            FROM ({learner_transcript(r)}) WHERE status != 'completed')
        SELECT o.userId AS userId, o.courseId AS courseId, o.enrolledAt AS enrolledAt, o.status AS status,
               o.progressPercentage AS progressPercentage, o.lastAccessDate AS lastAccessDate,
               o.daysInactive AS daysInactive, t.earlier AS earlierAverageScore, t.recent AS recentAverageScore,
               ifNull(t.earlier - t.recent >= {{score_drop:Float64}}, false) AS falling,
               multiIf(o.inactive AND falling, 'both', o.inactive, 'inactive', 'falling-scores') AS reason
        FROM open AS o LEFT JOIN trend AS t ON t.user_id = o.userId AND t.course_id = o.courseId
        WHERE o.inactive OR falling
        ORDER BY daysInactive DESC, userId, courseId
        SETTINGS join_use_nulls = 1"""


def compliance(r: Request) -> str:
    return f"""
        WITH people AS (SELECT DISTINCT user_id FROM learners WHERE {r.users()}),
        required AS (SELECT arrayJoin({listed('course_ids')}) AS course_id),
        enrolled AS (
            SELECT user_id, course_id, min(enrolled_at) AS at FROM enrollments
            WHERE {r.users()}{r.courses()} GROUP BY user_id, course_id),
        completed AS (
            SELECT user_id, course_id, min(completed_at) AS at FROM course_completions
            WHERE {r.users()}{r.courses()} GROUP BY user_id, course_id)
        SELECT p.user_id AS userId, q.course_id AS courseId, e.at AS enrolledAt, c.at AS completedAt,
               multiIf(c.at IS NULL, 'not-completed', c.at < {DUE}, 'completed-on-time', 'completed-late') AS status,
               toBool(c.at IS NOT NULL AND c.at < {DUE}) AS compliant
        FROM people AS p CROSS JOIN required AS q
        LEFT JOIN enrolled AS e ON e.user_id = p.user_id AND e.course_id = q.course_id
        LEFT JOIN completed AS c ON c.user_id = p.user_id AND c.course_id = q.course_id
        ORDER BY userId, courseId
        SETTINGS join_use_nulls = 1"""
