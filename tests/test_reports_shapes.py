"""What a report job's parameters make of a report, end to end (gateway,
worker, files) against tests/report_model.py's recomputation:

- content-usage (sql/0031_content_usage.sql) per course and event type,
  for an administrator and a teacher, and filtered by event type;
- groupBy re-aggregates (learner-activity by department, engagement-trend
  by week, content-usage by department and month, assessment-results by
  course) and measures select and order the columns;
- a combination a report type cannot answer is 400 naming the field;
- at-risk-learners: inactive, falling scores, or both;
- the job list's filters and their 400s.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from lms_events.settings import Settings
from tests import analytics_model as model
from tests import report_model
from tests.support import Gateway, unique_org
from tests.test_reports import JOBS, TODAY, Posted, _scope, caller, posted, report

__all__ = ["posted"]  # the module's data set, posted once


def _rows(raw: bytes) -> list[dict[str, Any]]:
    return orjson.loads(raw)


def _course(org: model.Organization, e: model.Event) -> str:
    return e.course_id or ""


@pytest.mark.parametrize("role", ["subscriber-admin", "teacher"])
async def test_content_usage_equals_the_recomputation(gateway: Gateway, settings: Settings, posted: Posted, role: str) -> None:
    targets = posted.data.targets[posted.org]
    sub = "admin" if role == "subscriber-admin" else targets.teacher_id
    scope = _scope(posted, role, sub)
    who = caller(gateway, settings, role, posted.org, sub, scope.departments)
    end = model.day_end(TODAY)

    _, raw = await report(who, "content-usage")
    expected = report_model.content_usage(posted.data, scope, lambda o, e: (_course(o, e), e.event_type), end=end)
    rows = _rows(raw)
    assert rows and list(rows[0]) == ["courseId", "eventType", "events", "activeLearners"]
    assert {(r["courseId"], r["eventType"]): {"events": r["events"], "activeLearners": r["activeLearners"]} for r in rows} == expected
    assert [(r["courseId"], r["eventType"]) for r in rows] == sorted(expected)

    if role == "subscriber-admin":
        types = sorted({e.event_type for e in model.index(posted.data)[posted.org].events})[:2]
        first = TODAY - timedelta(days=20)
        _, raw = await report(
            who, "content-usage", groupBy=["department", "month"], measures=["active-learners", "events"],
            filters={"eventTypes": types}, dateRange={"startDate": first.isoformat(), "endDate": TODAY.isoformat()},
        )  # fmt: skip
        rows = _rows(raw)
        assert rows and list(rows[0]) == ["departmentId", "month", "activeLearners", "events"]
        expected = report_model.content_usage(
            posted.data, scope, lambda o, e: (o.department.get(e.user_id, ""), e.timestamp.strftime("%Y-%m")),
            start=model.day_end(first) - timedelta(days=1), end=end, event_types=types,
        )  # fmt: skip
        assert {(r["departmentId"], r["month"]): {"events": r["events"], "activeLearners": r["activeLearners"]} for r in rows} == expected


async def test_grouped_reports_equal_the_recomputation(gateway: Gateway, settings: Settings, posted: Posted) -> None:
    admin = caller(gateway, settings, "subscriber-admin", posted.org, "admin")
    scope = _scope(posted)
    data = posted.data
    end = model.day_end(TODAY)

    # learner-activity by department: every measure, enrollments and completions included
    _, raw = await report(admin, "learner-activity", groupBy=["department"])
    rows = _rows(raw)
    department = lambda o, e: (o.department.get(e.user_id, ""),)  # noqa: E731
    expected = report_model.activity(data, scope, department, end=end)
    enrolled, completed = report_model.enrollment_counts(data, scope, lambda o, u, c: (o.department.get(u, ""),), end=end)
    assert len(rows) > 1 and list(rows[0]) == [
        "departmentId", "events", "activeDays", "learningHours", "averageScore", "lastActiveAt", "coursesEnrolled", "coursesCompleted",
    ]  # fmt: skip
    for row in rows:
        key = (row["departmentId"],)
        figures = {k: v for k, v in expected[key].items() if k != "activeLearners"}
        assert {k: row[k] for k in figures} == figures, key
        assert (row["coursesEnrolled"], row["coursesCompleted"]) == (enrolled.get(key, 0), completed.get(key, 0)), key
    assert {(r["departmentId"],) for r in rows} == set(expected)

    # measures select and order; a grouped-only measure on request
    _, raw = await report(admin, "learner-activity", groupBy=["course", "week"], measures=["active-learners", "events"])
    rows = _rows(raw)
    assert list(rows[0]) == ["courseId", "week", "activeLearners", "events"]
    expected = report_model.activity(data, scope, lambda o, e: (e.course_id or "", model.iso_week(e.timestamp.date())), end=end)
    assert {(r["courseId"], r["week"]): (r["activeLearners"], r["events"]) for r in rows} == {
        key: (f["activeLearners"], f["events"]) for key, f in expected.items()
    }
    _, raw = await report(admin, "learner-activity", measures=["learning-hours", "events"])
    assert list(_rows(raw)[0]) == ["userId", "learningHours", "events"]

    # engagement-trend by week: every week of the range, zero-filled, over the range's days only
    first = TODAY - timedelta(days=24)
    _, raw = await report(admin, "engagement-trend", groupBy=["week"], dateRange={"startDate": first.isoformat(), "endDate": TODAY.isoformat()})
    start = end - timedelta(days=25)
    by_week = {
        week: f
        for (week,), f in report_model.activity(
            data, scope, lambda o, e: (model.iso_week(e.timestamp.date()) if e.timestamp >= start else "before",), end=end, known_only=False
        ).items()
    }  # fmt: skip
    assert _rows(raw) == [
        {
            "week": week,
            "events": by_week.get(week, {}).get("events", 0),
            "activeLearners": by_week.get(week, {}).get("activeLearners", 0),
            "learningHours": by_week.get(week, {}).get("learningHours", 0),
        }
        for week in report_model.weeks_between(first, TODAY)
    ]

    # course-completion by department: enrollments and completions of its learners, their rate, time and scores
    _, raw = await report(admin, "course-completion", groupBy=["department"])
    org = model.index(data)[posted.org]
    dept = lambda user: org.department.get(user, "")  # noqa: E731
    enrolled = {pair: e for pair, e in org.enrollments.items() if e.enrolled_at < end}
    completed = {pair: done for pair, done in org.completions.items() if done.at < end}
    expected = {}
    for department in {dept(u) for u, _ in enrolled} | {dept(u) for u, _ in completed}:
        ins = [pair for pair in enrolled if dept(pair[0]) == department]
        outs = [pair for pair in completed if dept(pair[0]) == department]
        expected[department] = {
            "departmentId": department, "enrollments": len(ins), "completions": len(outs),
            "completionRate": model.rounded(100 * len(outs) / len(ins)) if ins else 0,
            "averageScore": model.rounded(model.mean(
                e.score for e in org.events if e.score is not None and e.course_id and e.user_id and dept(e.user_id) == department
            )),
            "averageHoursToComplete": model.rounded(model.mean(
                (completed[pair].at - enrolled[pair].enrolled_at) / timedelta(hours=1) for pair in outs if pair in enrolled
            )),
        }  # fmt: skip
    assert {r["departmentId"]: r for r in _rows(raw)} == expected

    # assessment-results by course
    _, raw = await report(admin, "assessment-results", groupBy=["course"])
    attempts: dict[str, list[model.Attempt]] = {}
    for tries in org.attempts.values():
        for attempt in tries:
            attempts.setdefault(attempt.course_id, []).append(attempt)
    got = {r["courseId"]: r for r in _rows(raw)}
    assert set(got) == set(attempts)
    for course, tries in attempts.items():
        passed = 100 * sum(a.passed for a in tries) / len(tries)
        spent = model.mean(a.time_spent_s for a in tries if a.time_spent_s is not None)
        assert got[course] == {
            "courseId": course, "attempts": len(tries), "averageScore": model.rounded(model.mean(a.score for a in tries if a.score is not None)),
            "passRate": model.rounded(passed), "difficultyRating": model.rounded(1 - passed / 100),
            "averageMinutesSpent": model.rounded(spent / 60 if spent is not None else None),
        }, course  # fmt: skip


@pytest.mark.parametrize(
    ("report_type", "parameters", "field", "listed"),
    [
        ("learner-transcript", {"groupBy": ["course"]}, "parameters.groupBy", "takes no groupBy"),
        ("course-completion", {"groupBy": ["week"]}, "parameters.groupBy", "its dimensions: course, department"),
        ("learner-activity", {"groupBy": ["assessment"]}, "parameters.groupBy", "learner, course, class, department, day, week, month"),
        ("engagement-trend", {"groupBy": ["course"]}, "parameters.groupBy", "day, week, month"),
        ("learner-activity", {"groupBy": ["day", "week"]}, "parameters.groupBy", "one time grain"),
        ("learner-activity", {"groupBy": ["week"], "measures": ["enrollments"]}, "parameters.measures", "events, active-days"),
        ("learner-activity", {"measures": ["pass-rate"]}, "parameters.measures", "last-activity"),
        ("learner-activity", {"measures": ["active-learners"]}, "parameters.measures", "events"),
        ("compliance", {"measures": ["events"]}, "parameters.measures", "no measures"),
        ("content-usage", {"measures": ["events", "events"]}, "parameters.measures", "twice"),
    ],
)
async def test_a_combination_a_report_cannot_answer_is_400(
    gateway: Gateway, settings: Settings, report_type: str, parameters: dict[str, Any], field: str, listed: str
) -> None:
    admin = caller(gateway, settings, "subscriber-admin", unique_org(), "admin")
    body = {"reportType": report_type, "name": "x", "parameters": parameters}
    if report_type == "compliance":
        parameters |= {"filters": {"courseIds": ["c1"]}, "dueDate": TODAY.isoformat()}
    status, answer = await admin.call("POST", JOBS, body)
    assert status == 400, answer
    assert answer["field"] == field and listed in answer["error"], answer


async def test_at_risk_reasons_equal_the_recomputation(gateway: Gateway, settings: Settings, posted: Posted) -> None:
    admin = caller(gateway, settings, "subscriber-admin", posted.org, "admin")
    scope = _scope(posted)
    end = model.day_end(TODAY)
    _, raw = await report(admin, "at-risk-learners", inactiveDays=30, recentScoreDays=2, scoreDrop=5)
    expected = {}
    for p in model.learning_progress(posted.data, scope, until=TODAY):
        if p["status"] == "completed":
            continue
        inactive = model.parse_time(p["lastAccessDate"]) < end - timedelta(days=30)
        earlier, recent = report_model.score_trend(posted.data, scope, p["userId"], p["courseId"], end=end, recent_days=2)
        falling = earlier is not None and recent is not None and earlier - recent >= 5
        if inactive or falling:
            reason = "both" if inactive and falling else "inactive" if inactive else "falling-scores"
            expected[(p["userId"], p["courseId"])] = (reason, model.rounded(earlier), model.rounded(recent))
    got = {(r["userId"], r["courseId"]): (r["reason"], r["earlierAverageScore"], r["recentAverageScore"]) for r in _rows(raw)}
    assert got == expected
    assert {"inactive", "falling-scores"} <= {reason for reason, _, _ in got.values()}  # both kinds occur in the data set


async def test_job_list_filters(gateway: Gateway, settings: Settings) -> None:
    org = unique_org()
    admin = caller(gateway, settings, "subscriber-admin", org, "admin")
    later = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # they wait pending: no worker time
    made = []
    for n, extra in enumerate(
        (
            {"priority": "high", "visibility": "organization", "templateId": "tpl_1"},
            {"priority": "low", "visibility": "department", "departmentId": "dep_a", "scheduleId": "sch_1"},
            {"priority": "high", "visibility": "department", "departmentId": "dep_b", "templateId": "tpl_1"},
            {"priority": "normal"},
        )
    ):
        made.append((await admin.create({"reportType": "learner-activity", "name": f"job {n}", "scheduledFor": later, **extra}))["id"])

    async def listed(**query: str) -> list[str]:
        ids, cursor = [], None
        while True:
            status, page = await admin.call("GET", JOBS, limit="1", **query, **({"cursor": cursor} if cursor else {}))
            assert status == 200, page
            ids += [job["id"] for job in page["items"]]
            if not (cursor := page["nextCursor"]):
                return ids

    newest_first = made[::-1]
    assert await listed(priority="high") == [made[2], made[0]]
    assert await listed(visibility="department") == [made[2], made[1]]
    assert await listed(departmentId="dep_a") == [made[1]]
    assert await listed(templateId="tpl_1", priority="high") == [made[2], made[0]]
    assert await listed(scheduleId="sch_1") == [made[1]]
    status, job = await admin.call("GET", f"{JOBS}/{made[2]}")
    assert status == 200
    assert await listed(createdAfter=job["createdAt"]) == newest_first[:2]
    assert await listed(createdBefore=job["createdAt"]) == newest_first[2:]
    assert await listed(createdAfter=TODAY.isoformat(), createdBefore=(TODAY + timedelta(days=1)).isoformat()) == newest_first
    for query, field in (
        ({"priority": "asap"}, "priority"),
        ({"visibility": "public"}, "visibility"),
        ({"departmentId": "d" * 200}, "departmentId"),
        ({"templateId": "t\x01"}, "templateId"),
        ({"createdAfter": "yesterday"}, "createdAfter"),
        ({"createdBefore": "2026-12-01T10:00:00"}, "createdBefore"),  # no time zone
        ({"createdAfter": "2026-12-02", "createdBefore": "2026-12-01"}, "createdAfter"),
    ):
        status, answer = await admin.call("GET", JOBS, **query)
        assert (status, answer.get("field")) == (400, field), (query, answer)


async def test_report_types_list_their_measures_and_dimensions(gateway: Gateway, settings: Settings) -> None:
    status, answer = await caller(gateway, settings, "teacher", unique_org(), "t").call("GET", "/api/v1/reports")
    assert status == 200, answer
    types = {t["id"]: t for t in answer["items"]}
    assert types["content-usage"]["columns"] == ["courseId", "eventType", "events", "activeLearners"]
    assert types["content-usage"]["dimensions"][:2] == ["course", "event-type"]
    assert {"week", "month", "department"} <= set(types["learner-activity"]["dimensions"])
    assert "last-activity" in types["learner-activity"]["measures"]
    assert types["compliance"]["measures"] == [] and types["compliance"]["dimensions"] == []
