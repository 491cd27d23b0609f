"""Report jobs end to end on the session's real components: a generated
data set posted through the gateway, jobs created through the API, run by
the worker that `up` runs in-process, files read back with real readers.

- lookup values: a bad enum value is a 400 naming the field and the allowed values;
- the lifecycle and its illegal transitions (409), download (type, name, 410);
- visibility of jobs per role, and a student's transcript-only rule;
- every format holds the same rows (csv, orjson, openpyxl, pyarrow, pypdf);
- each report's numbers equal tests/analytics_model.py's recomputation;
- a completed job publishes ReportGenerated.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import openpyxl
import orjson
import pyarrow.parquet as pq
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer
from pypdf import PdfReader
from redis.asyncio import Redis

from lms_events import tokens
from lms_events.clickhouse import ClickHouseStore
from lms_events.secret_files import load_or_create_secret
from lms_events.settings import Settings
from lms_events.topics import ANALYTICS_EVENTS
from reports import jobs
from reports.rows import staging_table
from reports.worker import ReportWorker
from tests import analytics_model as model
from tests.analytics_data import Dataset, generate
from tests.support import Gateway, eventually, unique_org
from tests.test_analytics_correctness import post_dataset

SEED = 20261213
TODAY = datetime.now(UTC).date()
JOBS = "/api/v1/report-jobs"


@dataclass
class Caller:
    gateway: Gateway
    token: str
    sub: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, method: str, path: str, body: Any = None, **params: str) -> tuple[int, Any]:
        async with self.gateway.session.request(
            method, f"{self.gateway.url}{path}", headers=self.headers, json=body, params=params
        ) as response:
            raw = await response.read()
            return response.status, orjson.loads(raw) if raw else None

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        status, job = await self.call("POST", JOBS, body)
        assert status == 202, job
        return job

    async def finished(self, job_id: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any]:
            return (await self.call("GET", f"{JOBS}/{job_id}"))[1]

        return await eventually(probe, lambda job: job.get("status") in jobs.FINAL, timeout=60)

    async def download(self, job_id: str) -> tuple[int, dict[str, str], bytes]:
        async with self.gateway.session.get(f"{self.gateway.url}{JOBS}/{job_id}/download", headers=self.headers) as response:
            return response.status, dict(response.headers), await response.read()


def caller(gateway: Gateway, settings: Settings, role: str, org: str | None, sub: str, departments: tuple[str, ...] = ()) -> Caller:
    secret = load_or_create_secret(settings.jwt_secret, settings.data_dir, tokens.SECRET_FILE)
    return Caller(gateway, tokens.mint(secret, sub=sub, role=role, organization_id=org, departments=departments), sub)


@dataclass
class Posted:
    data: Dataset
    org: str


@pytest_asyncio.fixture(scope="module")
async def posted(gateway: Gateway, store: ClickHouseStore) -> AsyncIterator[Posted]:
    org = unique_org()
    data = generate(SEED, today=TODAY, organization_ids=[org], students=14, courses=4, enrollments=40)
    await post_dataset(gateway, store, data)
    yield Posted(data, org)


async def report(who: Caller, report_type: str, output_format: str = "json", **parameters: Any) -> tuple[dict[str, Any], bytes]:
    job = await who.create({"reportType": report_type, "name": f"{report_type} test", "output": {"format": output_format}, "parameters": parameters})
    done = await who.finished(job["id"])
    assert done["status"] == "completed", done
    status, _, body = await who.download(job["id"])
    assert status == 200
    return done, body


# Lookup values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "allowed"),
    [
        ({"reportType": "sales", "name": "x"}, "reportType", "learner-activity"),
        ({"reportType": "learner-activity", "name": "x", "output": {"format": "docx"}}, "output.format", "parquet"),
        ({"reportType": "learner-activity", "name": "x", "priority": "asap"}, "priority", "urgent"),
        ({"reportType": "learner-activity", "name": "x", "visibility": "public"}, "visibility", "organization"),
        ({"reportType": "learner-activity", "name": "x", "parameters": {"measures": ["events", "profit"]}}, "parameters.measures[1]", "learning-hours"),
        ({"reportType": "learner-activity", "name": "x", "parameters": {"groupBy": ["planet"]}}, "parameters.groupBy[0]", "department"),
        ({"reportType": "learner-activity", "name": "x", "parameters": {"filters": {"eventTypes": ["nap"]}}}, "parameters.filters.eventTypes[0]", "game_stage_complete"),
    ],
)
async def test_a_bad_lookup_value_is_400_naming_the_field_and_the_allowed_values(
    gateway: Gateway, settings: Settings, body: dict[str, Any], field: str, allowed: str
) -> None:
    admin = caller(gateway, settings, "subscriber-admin", unique_org(), "admin")
    status, answer = await admin.call("POST", JOBS, body)
    assert status == 400, answer
    assert answer["field"] == field
    assert allowed in answer["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, None),  # reportType missing
        ({"reportType": "learner-activity", "name": "x", "colour": "red"}, None),
        ({"reportType": "learner-activity", "name": ""}, "name"),
        ({"reportType": "learner-activity", "name": "x", "parameters": {"dateRange": {"startDate": "2026-02-30", "endDate": "2026-03-01"}}}, "parameters.dateRange.startDate"),
        ({"reportType": "learner-activity", "name": "x", "parameters": {"dateRange": {"startDate": "2026-03-02", "endDate": "2026-03-01"}}}, "parameters.dateRange"),
        ({"reportType": "learner-activity", "name": "x", "visibility": "department"}, "departmentId"),
    ],
)
async def test_malformed_requests_are_400(gateway: Gateway, settings: Settings, body: dict[str, Any], field: str | None) -> None:
    admin = caller(gateway, settings, "subscriber-admin", unique_org(), "admin")
    status, answer = await admin.call("POST", JOBS, body)
    assert status == 400, answer
    assert answer.get("field") == field, answer


async def test_lookup_values_are_served(gateway: Gateway, settings: Settings) -> None:
    status, answer = await caller(gateway, settings, "teacher", unique_org(), "t").call("GET", "/api/v1/report-lookups")
    assert status == 200
    assert answer["categories"]["report-status"] == ["pending", "queued", "running", "completed", "failed", "cancelled"]
    assert "game_stage_complete" in answer["categories"]["event-type"]


# Lifecycle -----------------------------------------------------------------------


async def test_lifecycle_download_and_illegal_transitions(
    gateway: Gateway, settings: Settings, store: ClickHouseStore, posted: Posted
) -> None:
    admin = caller(gateway, settings, "subscriber-admin", posted.org, "admin")
    job = await admin.create({"reportType": "course-completion", "name": "Completion", "output": {"format": "csv", "filename": "completion-q1"}})
    assert job["status"] == "queued" and job["requestedBy"] == "admin" and job["visibility"] == "private"
    done = await admin.finished(job["id"])
    assert done["status"] == "completed"
    assert done["progress"]["percentage"] == 100 and done["progress"]["recordsProcessed"] == done["progress"]["totalRecords"]
    assert done["startedAt"] <= done["completedAt"] < done["expiresAt"]
    assert done["output"]["storage"]["provider"] == "local"

    status, headers, body = await admin.download(job["id"])
    assert status == 200
    assert headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"] == 'attachment; filename="completion-q1.csv"'
    assert body.startswith(b"courseId,enrollments,completions")
    downloads = await store.query("SELECT downloaded_by FROM report_downloads WHERE job_id = {j:String}", {"j": job["id"]})
    assert downloads == [{"downloaded_by": "admin"}]  # the audit trail: who, which job (and when)
    audited = await eventually(
        lambda: store.query(
            "SELECT actor, actor_role, organization_id FROM audit_log WHERE action = 'download.report' AND target = {t:String}",
            {"t": f"report-job:{job['id']}"},
        ),
        bool,
    )
    assert audited == [{"actor": "admin", "actor_role": "subscriber-admin", "organization_id": posted.org}]

    for action in ("cancel", "retry"):
        status, answer = await admin.call("POST", f"{JOBS}/{job['id']}/{action}")
        assert status == 409, answer
        assert answer["field"] == "status" and "completed" in answer["error"]

    status, _ = await admin.call("DELETE", f"{JOBS}/{job['id']}")
    assert status == 204
    assert (await admin.call("GET", f"{JOBS}/{job['id']}"))[0] == 404
    assert (await admin.download(job["id"]))[0] == 404


async def test_a_scheduled_job_waits_pending_and_can_be_cancelled(gateway: Gateway, settings: Settings) -> None:
    admin = caller(gateway, settings, "subscriber-admin", unique_org(), "admin")
    later = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    job = await admin.create({"reportType": "learner-activity", "name": "Tomorrow", "scheduledFor": later})
    assert job["status"] == "pending" and job["scheduledFor"] == later
    status, cancelled = await admin.call("POST", f"{JOBS}/{job['id']}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled"
    assert (await admin.download(job["id"]))[0] == 409  # nothing to download
    assert (await admin.call("POST", f"{JOBS}/{job['id']}/retry"))[0] == 409  # only a failed job is retried
    assert (await admin.call("POST", f"{JOBS}/{job['id']}/cancel"))[0] == 409


async def test_an_expired_file_is_410_then_removed(
    gateway: Gateway, settings: Settings, store: ClickHouseStore, posted: Posted, redis_url: str
) -> None:
    admin = caller(gateway, settings, "subscriber-admin", posted.org, "admin")
    job = await admin.create({"reportType": "assessment-results", "name": "Old"})
    await admin.finished(job["id"])
    # Time passes: the job's latest row says it expired an hour ago.
    await store.execute(
        "INSERT INTO report_jobs SELECT * REPLACE (version + 1 AS version, 'test-expiry' AS transition, "
        "now64(3) - INTERVAL 1 HOUR AS expires_at) FROM report_jobs WHERE job_id = {job:String} ORDER BY version DESC LIMIT 1",
        {"job": job["id"]},
    )
    status, _, body = await admin.download(job["id"])
    assert status == 410, body
    # the worker's cleanup pass (every minute; here at once) removes the file and the job
    done = await admin.finished(job["id"])
    path = settings.reports_dir / done["output"]["storage"]["path"]
    assert path.is_file()
    redis = Redis.from_url(redis_url)
    try:
        assert await ReportWorker(settings, store, redis).remove_expired() >= 1
    finally:
        await redis.aclose()
    assert not path.exists()
    assert (await admin.call("GET", f"{JOBS}/{job['id']}"))[0] == 404


async def test_aliases_of_the_analytics_seed(gateway: Gateway, settings: Settings, posted: Posted) -> None:
    admin = caller(gateway, settings, "subscriber-admin", posted.org, "admin")
    status, types = await admin.call("GET", "/api/v1/reports")
    assert status == 200
    assert {"learner-activity", "course-completion", "assessment-results", "learner-transcript"} <= {t["id"] for t in types["items"]}
    status, job = await admin.call("POST", "/api/v1/reports/assessment-results/generate", {"name": "Assessments"})
    assert status == 202 and job["reportType"] == "assessment-results"
    status, same = await admin.call("GET", f"/api/v1/reports/assessment-results/status/{job['id']}")
    assert status == 200 and same["id"] == job["id"]
    assert (await admin.call("GET", f"/api/v1/reports/learner-activity/status/{job['id']}"))[0] == 404


# Who sees what ---------------------------------------------------------------------


async def test_visibility_per_role(gateway: Gateway, settings: Settings) -> None:
    org = unique_org()
    admin = caller(gateway, settings, "subscriber-admin", org, "admin")
    teacher = caller(gateway, settings, "teacher", org, "usr_t1", ("dep_math",))
    other_teacher = caller(gateway, settings, "teacher-admin", org, "usr_ta", ("dep_music",))
    student = caller(gateway, settings, "student", org, "usr_s1")
    outsider = caller(gateway, settings, "subscriber-admin", unique_org(), "admin")
    made = {}
    for visibility, extra in (("private", {}), ("department", {"departmentId": "dep_math"}), ("organization", {})):
        made[visibility] = (await teacher.create({"reportType": "learner-activity", "name": visibility, "visibility": visibility, **extra}))["id"]
    admins_private = (await admin.create({"reportType": "course-completion", "name": "mine"}))["id"]
    own = (await student.create({"reportType": "learner-transcript", "name": "me"}))["id"]

    async def listed(who: Caller) -> set[str]:
        status, page = await who.call("GET", JOBS, limit="1000")
        assert status == 200, page
        return {job["id"] for job in page["items"]}

    assert await listed(teacher) == set(made.values())
    assert await listed(admin) == {made["department"], made["organization"], admins_private}
    assert await listed(other_teacher) == {made["organization"]}
    assert await listed(student) == {own}
    assert await listed(outsider) == set()
    for who, job_id, status in (
        (admin, made["private"], 404),
        (other_teacher, made["department"], 404),
        (student, made["organization"], 404),
        (outsider, made["organization"], 404),
        (other_teacher, made["organization"], 200),
    ):
        assert (await who.call("GET", f"{JOBS}/{job_id}"))[0] == status, (who.sub, job_id)
    # reading is not managing: a colleague may not cancel the teacher's organization-wide job
    assert (await other_teacher.call("POST", f"{JOBS}/{made['organization']}/cancel"))[0] == 403
    # filters and keyset pages
    status, page = await teacher.call("GET", JOBS, limit="2", reportType="learner-activity")
    assert status == 200 and len(page["items"]) == 2 and page["nextCursor"]
    status, rest = await teacher.call("GET", JOBS, limit="2", reportType="learner-activity", cursor=page["nextCursor"])
    assert [j["id"] for j in page["items"] + rest["items"]] == [made[v] for v in ("organization", "department", "private")]
    assert rest["nextCursor"] is None
    assert (await teacher.call("GET", JOBS, status="done"))[0] == 400


async def test_a_student_runs_only_their_own_transcript(gateway: Gateway, settings: Settings) -> None:
    student = caller(gateway, settings, "student", unique_org(), "usr_s1")
    status, answer = await student.call("POST", JOBS, {"reportType": "learner-activity", "name": "x"})
    assert (status, answer["field"]) == (403, "reportType")
    body = {"reportType": "learner-transcript", "name": "x", "parameters": {"filters": {"learnerIds": ["usr_s2"]}}}
    status, answer = await student.call("POST", JOBS, body)
    assert (status, answer["field"]) == (403, "parameters.filters.learnerIds")
    status, answer = await student.call("POST", JOBS, {**body, "parameters": {"filters": {"learnerIds": ["usr_s1"]}}})
    assert status == 202, answer


# Formats -------------------------------------------------------------------------


def _cells(value: Any) -> str:
    return "" if value is None else str(value)


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


async def test_every_format_holds_the_same_rows(gateway: Gateway, settings: Settings, posted: Posted) -> None:
    admin = caller(gateway, settings, "subscriber-admin", posted.org, "admin")
    _, raw = await report(admin, "learner-activity", "json")
    rows = orjson.loads(raw)
    assert len(rows) > 5
    columns = list(rows[0])
    expected = [[_cells(row[c]) for c in columns] for row in rows]

    _, body = await report(admin, "learner-activity", "csv")
    table = list(csv.reader(io.StringIO(body.decode())))
    assert table[0] == columns and table[1:] == expected

    _, body = await report(admin, "learner-activity", "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(body), read_only=True).active
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[0] == columns
    # Excel keeps one number type: 41.0 reads back as 41
    assert [[_number(v) for v in row] for row in values[1:]] == [[_number(row[c]) for c in columns] for row in rows]

    _, body = await report(admin, "learner-activity", "parquet")
    parquet = pq.read_table(io.BytesIO(body))
    assert parquet.column_names == columns
    assert [[_cells(row[c]) for c in columns] for row in parquet.to_pylist()] == expected

    done, body = await report(admin, "learner-activity", "pdf")
    assert body.startswith(b"%PDF")
    pdf = PdfReader(io.BytesIO(body))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert done["name"] in text and "Summary" in text and f"Page {len(pdf.pages)} of {len(pdf.pages)}" in text
    for row in rows:
        assert row["userId"] in text


# Numbers -------------------------------------------------------------------------


def _scope(posted: Posted, role: str = "subscriber-admin", sub: str = "admin") -> model.Scope:
    targets = posted.data.targets[posted.org]
    departments = targets.teacher_admin_departments if role == "teacher-admin" else ()
    return model.Scope(role, posted.org, sub, departments)


@pytest.mark.parametrize("role", ["subscriber-admin", "teacher-admin", "teacher"])
async def test_report_numbers_equal_the_recomputation(gateway: Gateway, settings: Settings, posted: Posted, role: str) -> None:
    targets = posted.data.targets[posted.org]
    sub = {"subscriber-admin": "admin", "teacher-admin": targets.teacher_admin_id, "teacher": targets.teacher_id}[role]
    scope = _scope(posted, role, sub)
    who = caller(gateway, settings, role, posted.org, sub, scope.departments)
    data = posted.data

    _, raw = await report(who, "learner-activity", includeInactive=True)
    members = model.members_of(data, scope)
    activity = {row["userId"]: row for row in orjson.loads(raw)}
    assert set(activity) == {u for u in members if model.user_analytics(data, scope, u) is not None}
    for user, row in activity.items():
        expected = model.user_analytics(data, scope, user)
        assert expected is not None
        assert (row["learningHours"], row["averageScore"], row["lastActiveAt"], row["coursesEnrolled"], row["coursesCompleted"]) == (
            expected["totalLearningHours"], expected["averageScore"], expected["lastActiveDate"],
            expected["totalCoursesEnrolled"], expected["totalCoursesCompleted"],
        ), user  # fmt: skip

    _, raw = await report(who, "course-completion")
    for row in orjson.loads(raw):
        expected = model.course_analytics(data, scope, row["courseId"])
        assert expected is not None
        assert (row["enrollments"], row["completions"], row["completionRate"], row["averageScore"], row["averageHoursToComplete"]) == (
            expected["totalEnrollments"], expected["totalCompletions"], expected["completionRate"],
            expected["averageScore"], expected["averageTimeToComplete"],
        ), row  # fmt: skip

    _, raw = await report(who, "assessment-results")
    rows = orjson.loads(raw)
    for row in rows:
        expected = model.assessment_analytics(data, scope, row["assessmentId"])
        assert expected is not None
        assert {k: row[k] for k in ("courseId", "attempts", "averageScore", "passRate", "difficultyRating")} == {
            "courseId": expected["courseId"], "attempts": expected["totalAttempts"], "averageScore": expected["averageScore"],
            "passRate": expected["passRate"], "difficultyRating": expected["difficultyRating"],
        }  # fmt: skip
        assert row["averageMinutesSpent"] == expected["averageTimeSpent"]
    assert {row["assessmentId"] for row in rows} == {
        a for a in targets.assessment_ids if (model.assessment_analytics(data, scope, a) or {}).get("totalAttempts")
    }

    _, raw = await report(who, "learner-transcript")
    expected_rows = model.learning_progress(data, scope, until=TODAY)
    got = [
        {"userId": r["userId"], "courseId": r["courseId"], "progressPercentage": r["progressPercentage"],
         "timeSpent": r["timeSpentMinutes"], "lastAccessDate": r["lastAccessDate"], "completionDate": r["completionDate"],
         "score": r["finalScore"], "status": r["status"]}
        for r in orjson.loads(raw)
    ]  # fmt: skip
    assert got == expected_rows


async def test_a_students_transcript_is_their_progress(gateway: Gateway, settings: Settings, posted: Posted) -> None:
    student_id = posted.data.targets[posted.org].student_id
    student = caller(gateway, settings, "student", posted.org, student_id)
    _, raw = await report(student, "learner-transcript")
    rows = orjson.loads(raw)
    expected = model.learning_progress(posted.data, _scope(posted, "student", student_id), until=TODAY)
    assert rows and {r["userId"] for r in rows} == {student_id}
    assert [(r["courseId"], r["status"], r["progressPercentage"]) for r in rows] == [
        (e["courseId"], e["status"], e["progressPercentage"]) for e in expected
    ]


async def test_the_other_reports_equal_the_recomputation(gateway: Gateway, settings: Settings, posted: Posted) -> None:
    """department-summary, engagement-trend, at-risk-learners, compliance: as the README defines them."""
    admin = caller(gateway, settings, "subscriber-admin", posted.org, "admin")
    org = model.index(posted.data)[posted.org]
    people = org.declared
    end = model.day_end(TODAY)

    _, raw = await report(admin, "department-summary")
    expected = {}
    for department in {org.department.get(u, "") for u in people}:
        members = {u for u in people if org.department.get(u, "") == department}
        expected[department] = {
            "departmentId": department,
            "learners": len(members),
            "activeLearners": len({e.user_id for e in org.events if e.user_id in members}),
            "enrollments": sum(1 for (u, _) in org.enrollments if u in members),
            "completions": sum(1 for (u, _) in org.completions if u in members),
            "learningHours": model.rounded(sum(e.duration_ms or 0 for e in org.events if e.user_id in members and e.learning) / 3_600_000),
        }
    assert {row["departmentId"]: row for row in orjson.loads(raw)} == expected

    first = TODAY - timedelta(days=9)
    _, raw = await report(admin, "engagement-trend", dateRange={"startDate": first.isoformat(), "endDate": TODAY.isoformat()})
    days = [first + timedelta(days=n) for n in range(10)]
    assert orjson.loads(raw) == [
        {
            "date": day.isoformat(),
            "events": sum(1 for e in org.events if e.timestamp.date() == day and e.user_id),
            "activeLearners": len({e.user_id for e in org.events if e.timestamp.date() == day and e.user_id}),
            "learningHours": model.rounded(sum(e.duration_ms or 0 for e in org.events if e.timestamp.date() == day and e.learning and e.user_id) / 3_600_000),
        }
        for day in days
    ]

    _, raw = await report(admin, "at-risk-learners", inactiveDays=30)
    progress = model.learning_progress(posted.data, _scope(posted), until=TODAY)
    at_risk = {
        (p["userId"], p["courseId"])
        for p in progress
        if p["status"] != "completed" and model.parse_time(p["lastAccessDate"]) < end - timedelta(days=30)
    }
    # falling scores are tests/test_reports_shapes.py's: here the inactive ones
    assert {(row["userId"], row["courseId"]) for row in orjson.loads(raw) if row["reason"] != "falling-scores"} == at_risk

    courses = list(posted.data.targets[posted.org].course_ids[:2])
    due = TODAY - timedelta(days=100)
    _, raw = await report(admin, "compliance", filters={"courseIds": courses}, dueDate=due.isoformat())
    rows = {(row["userId"], row["courseId"]): row for row in orjson.loads(raw)}
    assert set(rows) == {(u, c) for u in people for c in courses}
    for (user, course), row in rows.items():
        done = org.completions.get((user, course))
        on_time = done is not None and done.at < model.day_end(due)
        assert row["compliant"] is on_time, (user, course)
        assert row["status"] == ("not-completed" if done is None else "completed-on-time" if on_time else "completed-late")
        assert row["completedAt"] == (model.iso(done.at) if done else None)


async def test_filters_narrow_the_rows(gateway: Gateway, settings: Settings, posted: Posted) -> None:
    admin = caller(gateway, settings, "subscriber-admin", posted.org, "admin")
    org = model.index(posted.data)[posted.org]
    targets = posted.data.targets[posted.org]
    progress = model.learning_progress(posted.data, _scope(posted), until=TODAY)
    learners = sorted({p["userId"] for p in progress})[:3]
    course = targets.course_ids[0]
    _, raw = await report(admin, "learner-transcript", filters={"learnerIds": learners, "courseIds": [course]})
    assert [(r["userId"], r["courseId"], r["status"]) for r in orjson.loads(raw)] == [
        (p["userId"], p["courseId"], p["status"]) for p in progress if p["userId"] in learners and p["courseId"] == course
    ]
    department = targets.department_ids[0]
    _, raw = await report(admin, "learner-activity", includeInactive=True, filters={"departmentIds": [department]})
    assert {r["userId"] for r in orjson.loads(raw)} == {u for u in org.declared if org.department.get(u) == department}


async def test_a_completed_job_publishes_report_generated(gateway: Gateway, settings: Settings, bootstrap: str) -> None:
    admin = caller(gateway, settings, "subscriber-admin", unique_org(), "admin")
    done, _ = await report(admin, "engagement-trend", "csv")
    consumer = AIOKafkaConsumer(ANALYTICS_EVENTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen: list[dict[str, Any]] = []

    async def read() -> list[dict[str, Any]]:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            seen.extend(m for m in (orjson.loads(r.value) for r in records) if m.get("reportId") == done["id"])
        return seen

    try:
        messages = await eventually(read, bool)
    finally:
        await consumer.stop()
    assert messages == [
        {
            "eventType": "ReportGenerated", "reportId": done["id"], "reportType": "engagement-trend", "requestedBy": "admin",
            "organizationId": done["organizationId"], "format": "csv", "filePath": done["output"]["storage"]["path"],
            "generatedAt": done["completedAt"],
        }
    ]  # fmt: skip


async def test_cancel_stops_a_running_job(gateway: Gateway, settings: Settings, store: ClickHouseStore) -> None:
    """A job long enough to be caught writing (xlsx, 10 chunks) stops at its next chunk: no file, no completion."""
    org = unique_org()
    await store.execute(
        "INSERT INTO learners SELECT {org:String}, concat('u', toString(number)), now64(3), "
        "argMaxState('dep_a', now64(3)), argMaxState('student', now64(3)) FROM numbers(200000) GROUP BY number",
        {"org": org},
    )
    admin = caller(gateway, settings, "subscriber-admin", org, "admin")
    job = await admin.create({"reportType": "learner-activity", "name": "big", "output": {"format": "xlsx"}, "parameters": {"includeInactive": True}})

    async def probe() -> dict[str, Any]:
        return (await admin.call("GET", f"{JOBS}/{job['id']}"))[1]

    running = await eventually(probe, lambda j: (j.get("progress") or {}).get("recordsProcessed", 0) > 0, timeout=60)
    assert running["status"] == "running" and running["progress"]["totalRecords"] == 200_000
    status, cancelled = await admin.call("POST", f"{JOBS}/{job['id']}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled"
    # the worker noticed: its staging table dropped, its partial file removed
    await eventually(
        lambda: store.query("SELECT name FROM system.tables WHERE name = {t:String}", {"t": staging_table(job["id"])}),
        lambda tables: tables == [],
    )
    assert not list((settings.reports_dir / org).glob(f"*{job['id']}*"))
    transitions = [row["transition"] for row in await store.query(
        "SELECT transition FROM report_jobs WHERE job_id = {j:String} ORDER BY version", {"j": job["id"]})]  # fmt: skip
    assert transitions == ["created", "queued", "running", "cancelled"]
    assert (await probe())["status"] == "cancelled"
