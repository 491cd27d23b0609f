"""Reports re-aggregated by `parameters.groupBy`: one query per read-model
family, grouped by the dimensions asked for, yielding every measure that
family can give at that grain (reports/definitions/shape.py keeps the
ones asked for).

Each measure keeps its lookup definition at any grain (schemas/
report_lookups.json, measure-type): events are counted, active days and
active learners are distinct days and learners with an event in the
group, averages are means over the group's events (never means of
means). A learner's department is their latest one (as the
departmentIds filter and department-summary). A group is a row when it
has at least one event (attempt) in the range.
"""

from __future__ import annotations

from reports.definitions.request import END, Request

# groupBy value -> its column in a report (schemas/report_lookups.json, dimension)
COLUMNS = {
    "learner": "userId",
    "course": "courseId",
    "class": "classId",
    "department": "departmentId",
    "assessment": "assessmentId",
    "event-type": "eventType",
    "day": "date",
    "week": "week",
    "month": "month",
}
TIME_GRAINS = ("day", "week", "month")
# Dimensions by which enrollments and completions (facts of a learner and a course) can be counted.
ENROLLMENT_DIMENSIONS = frozenset({"learner", "course", "department"})


def _time(dimension: str, day: str) -> str:
    """A UTC day as its period: the day, its ISO week (2026-W49) or its month (2026-12)."""
    return {"day": day, "week": f"formatDateTime({day}, '%G-W%V')", "month": f"formatDateTime({day}, '%Y-%m')"}[dimension]


def _keys(dimensions: tuple[str, ...], columns: dict[str, str]) -> tuple[str, str]:
    """(SELECT list of the dimension columns, their names for GROUP BY / ORDER BY / USING)."""
    selected = ", ".join(f"{columns[d]} AS {COLUMNS[d]}" for d in dimensions)
    return selected, ", ".join(COLUMNS[d] for d in dimensions)


def _people(r: Request) -> str:
    return f"people AS (SELECT user_id, argMaxMerge(department_id) AS department_id FROM learners WHERE {r.users()} GROUP BY user_id)"


def activity(r: Request, dimensions: tuple[str, ...], *, known_only: bool, first: str | None = None) -> str:
    """learner-activity and engagement-trend by any of learner, course, class, department and a time grain.

    `first` (engagement-trend): the trend's first day; grouped by a time grain alone, every period of
    the days [first, e) is a row (zero-filled), holding only those days."""
    days = r.days() if first is None else f" AND event_date >= {first} AND event_date < toDate({END})"
    columns = {"learner": "user_id", "course": "course_id", "class": "class_id", "department": "department_id"}
    columns |= {grain: _time(grain, "event_date") for grain in TIME_GRAINS}
    selected, names = _keys(dimensions, columns)
    known = " AND user_id IN (SELECT user_id FROM people)" if known_only else ""
    sql = f"""
        WITH {_people(r)},
        base AS (
            SELECT user_id, event_date, course_id, class_id, sum(events) AS n, sum(learning_ms) AS learning_ms,
                   sum(score_sum) AS score_sum, sum(score_count) AS score_count, max(last_at) AS last_at
            FROM learner_activity_daily WHERE {r.users()}{days}{r.courses()}{r.classes()}{known}
            GROUP BY user_id, event_date, course_id, class_id),
        grouped AS (
            SELECT {selected}, sum(n) AS events, uniqExactIf(event_date, n > 0) AS activeDays,
                   sum(learning_ms) / 3600000 AS learningHours,
                   if(sum(score_count) = 0, NULL, sum(score_sum) / sum(score_count)) AS averageScore,
                   maxIf(last_at, n > 0) AS lastActiveAt, uniqExactIf(user_id, n > 0) AS activeLearners
            FROM (SELECT b.*, p.department_id AS department_id FROM base AS b LEFT JOIN people AS p ON p.user_id = b.user_id)
            GROUP BY {names} HAVING events > 0)"""
    if first is not None and len(dimensions) == 1:
        period = _time(dimensions[0], "day")
        return f"""{sql},
        periods AS (SELECT DISTINCT {period} AS {names} FROM (
            SELECT {first} + number AS day FROM numbers(toUInt64(dateDiff('day', {first}, toDate({END}))))))
        SELECT p.{names} AS {names}, ifNull(g.events, 0) AS events, ifNull(g.activeDays, 0) AS activeDays,
               ifNull(g.learningHours, 0) AS learningHours, g.averageScore AS averageScore, g.lastActiveAt AS lastActiveAt,
               ifNull(g.activeLearners, 0) AS activeLearners
        FROM periods AS p LEFT JOIN grouped AS g ON g.{names} = p.{names}
        ORDER BY {names}
        SETTINGS join_use_nulls = 1"""
    if not set(dimensions) <= ENROLLMENT_DIMENSIONS:
        return f"{sql} SELECT * FROM grouped ORDER BY {names}"
    pairs = {"learner": "user_id", "course": "course_id", "department": "department_id"}
    pair_keys, _ = _keys(dimensions, pairs)
    return f"""{sql},
        enrolled AS (
            SELECT {pair_keys}, count() AS n FROM (
                SELECT e.user_id AS user_id, e.course_id AS course_id, p.department_id AS department_id
                FROM (SELECT user_id, course_id FROM enrollments WHERE {r.users()}{r.courses()}{known} AND enrolled_at < {END}
                      GROUP BY user_id, course_id) AS e
                LEFT JOIN people AS p ON p.user_id = e.user_id)
            GROUP BY {names}),
        completed AS (
            SELECT {pair_keys}, count() AS n FROM (
                SELECT c.user_id AS user_id, c.course_id AS course_id, p.department_id AS department_id
                FROM (SELECT user_id, course_id FROM course_completions WHERE {r.users()}{r.courses()}{known}
                      GROUP BY user_id, course_id HAVING min(completed_at) < {END}) AS c
                LEFT JOIN people AS p ON p.user_id = c.user_id)
            GROUP BY {names})
        SELECT {names}, events, activeDays, learningHours, averageScore, lastActiveAt, activeLearners,
               e.n AS coursesEnrolled, c.n AS coursesCompleted
        FROM grouped AS g LEFT JOIN enrolled AS e USING ({names}) LEFT JOIN completed AS c USING ({names})
        ORDER BY {names}"""


def content(r: Request, dimensions: tuple[str, ...]) -> str:
    """content-usage (sql/0031_content_usage.sql) by any of learner, course, department, event type and a time grain."""
    columns = {"learner": "user_id", "course": "course_id", "department": "department_id", "event-type": "event_type"}
    columns |= {grain: _time(grain, "event_date") for grain in TIME_GRAINS}
    selected, names = _keys(dimensions, columns)
    return f"""
        WITH {_people(r)},
        base AS (
            SELECT user_id, event_date, course_id, event_type, sum(events) AS n FROM content_usage_daily
            WHERE {r.users()}{r.days()}{r.courses()}{r.event_types()}
            GROUP BY user_id, event_date, course_id, event_type)
        SELECT {selected}, sum(n) AS events, uniqExactIf(user_id, n > 0) AS activeLearners,
               uniqExactIf(event_date, n > 0) AS activeDays
        FROM (SELECT b.*, p.department_id AS department_id FROM base AS b LEFT JOIN people AS p ON p.user_id = b.user_id)
        GROUP BY {names} HAVING events > 0
        ORDER BY {names}"""


def assessments(r: Request, dimensions: tuple[str, ...]) -> str:
    """assessment-results by any of assessment, course, learner, department and a time grain (of completedAt)."""
    columns = {"assessment": "assessment_id", "course": "course_id", "learner": "user_id", "department": "department_id"}
    columns |= {grain: _time(grain, "toDate(completed_at)") for grain in TIME_GRAINS}
    selected, names = _keys(dimensions, columns)
    return f"""
        WITH {_people(r)}
        SELECT {selected}, count() AS attempts, avg(score) AS averageScore, 100 * countIf(passed) / count() AS passRate,
               avg(time_spent_s) / 60 AS averageMinutesSpent, 1 - countIf(passed) / count() AS difficultyRating
        FROM (SELECT a.*, p.department_id AS department_id
              FROM (SELECT * FROM assessment_attempts FINAL WHERE {r.users()}{r.courses()}{r.days("completed_at")}) AS a
              LEFT JOIN people AS p ON p.user_id = a.user_id)
        GROUP BY {names}
        ORDER BY {names}"""


def completion(r: Request, dimensions: tuple[str, ...]) -> str:
    """course-completion by course and/or the learner's department: a row per group with an enrollment
    or a completion before the range's end; scores of events in a course (as the report by course)."""
    columns = {"course": "course_id", "department": "department_id"}
    selected, names = _keys(dimensions, columns)

    def with_department(source: str) -> str:
        return f"(SELECT x.*, p.department_id AS department_id FROM {source} AS x LEFT JOIN people AS p ON p.user_id = x.user_id)"

    return f"""
        WITH {_people(r)},
        enrolled AS {with_department(f'''(
            SELECT course_id, user_id, min(enrolled_at) AS at FROM enrollments WHERE {r.users()}{r.courses()}{r.classes()}
            GROUP BY course_id, user_id HAVING at < {END})''')},
        completed AS {with_department(f'''(
            SELECT course_id, user_id, min(completed_at) AS at FROM course_completions WHERE {r.users()}{r.courses()}
            GROUP BY course_id, user_id HAVING at < {END})''')},
        enrolled_g AS (SELECT {selected}, count() AS n FROM enrolled GROUP BY {names}),
        completed_g AS (SELECT {selected}, count() AS n FROM completed GROUP BY {names}),
        groups AS (SELECT {names} FROM enrolled_g UNION DISTINCT SELECT {names} FROM completed_g),
        hours_g AS (
            SELECT {selected}, avg(dateDiff('millisecond', enrolled_at, completed_at) / 3600000) AS hours FROM (
                SELECT c.course_id AS course_id, c.department_id AS department_id, e.at AS enrolled_at, c.at AS completed_at
                FROM completed AS c INNER JOIN enrolled AS e ON e.course_id = c.course_id AND e.user_id = c.user_id)
            GROUP BY {names}),
        scores_g AS (
            SELECT {selected}, sum(score_sum) AS s, sum(score_count) AS n FROM {with_department(f'''(
                SELECT user_id, course_id, score_sum, score_count FROM learner_activity_daily
                WHERE {r.users()}{r.courses()} AND course_id != '' AND event_date < toDate({END}))''')}
            GROUP BY {names})
        SELECT {', '.join(f'g.{n} AS {n}' for n in names.split(', '))},
               ifNull(e.n, 0) AS enrollments, ifNull(c.n, 0) AS completions,
               if(enrollments = 0, 0, 100 * completions / enrollments) AS completionRate,
               if(ifNull(s.n, 0) = 0, NULL, s.s / s.n) AS averageScore, h.hours AS averageHoursToComplete
        FROM groups AS g
        LEFT JOIN enrolled_g AS e ON {_on('g', 'e', names)}
        LEFT JOIN completed_g AS c ON {_on('g', 'c', names)}
        LEFT JOIN scores_g AS s ON {_on('g', 's', names)}
        LEFT JOIN hours_g AS h ON {_on('g', 'h', names)}
        ORDER BY {names}
        SETTINGS join_use_nulls = 1"""


def _on(left: str, right: str, names: str) -> str:
    return " AND ".join(f"{left}.{n} = {right}.{n}" for n in names.split(", "))
