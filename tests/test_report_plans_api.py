"""Report templates, schedules and metadata through the HTTP API of the
session's gateway (which runs the report worker and a scheduler, as `up`):

- templates and schedules honour visibility and roles as jobs do;
- template CRUD, search by name and tag, keyset pages with system templates merged in,
  duplicate, run now with the request over the template's defaults;
- schedules: 400 naming cronExpression / timezone / frequency, upcoming in UTC and local
  time, pause / resume, run now, history with the job's status;
- a scheduled report's recipients get a notification record and ride on ReportGenerated;
- metadata: report types, formats, lookups, event types, filter options in the caller's scope.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from lms_events.clickhouse import ClickHouseStore
from lms_events.settings import Settings
from lms_events.topics import ANALYTICS_EVENTS
from reports import lookups
from reports.definitions import DEFINITIONS
from tests.support import Gateway, eventually, unique_org
from tests.test_reports import Caller, caller

TEMPLATES = "/api/v1/report-templates"
SCHEDULES = "/api/v1/report-schedules"
METADATA = "/api/v1/report-metadata"
# Never due while the tests run (the gateway's scheduler runs on the real clock).
YEARLY = "0 3 1 1 *"


def people(gateway: Gateway, settings: Settings, org: str) -> dict[str, Caller]:
    return {
        "admin": caller(gateway, settings, "subscriber-admin", org, "admin"),
        "teacher_a": caller(gateway, settings, "teacher", org, "teacher_a", ("d1",)),
        "teacher_b": caller(gateway, settings, "teacher", org, "teacher_b", ("d2",)),
        "student": caller(gateway, settings, "student", org, "student_1"),
        "stranger": caller(gateway, settings, "subscriber-admin", unique_org(), "other_admin"),
    }


async def created(who: Caller, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = await who.call("POST", path, body)
    assert status == 201, answer
    return answer


async def test_templates_honour_visibility_and_roles(gateway: Gateway, settings: Settings) -> None:
    org = unique_org()
    p = people(gateway, settings, org)
    base = {"reportType": "learner-activity", "output": {"format": "csv"}}
    private = await created(p["teacher_a"], TEMPLATES, {**base, "name": "mine"})
    department = await created(p["teacher_a"], TEMPLATES, {**base, "name": "d1 only", "visibility": "department", "departmentId": "d1"})
    shared = await created(p["admin"], TEMPLATES, {**base, "name": "everyone", "visibility": "organization", "tags": ["weekly"]})
    assert private["ownerId"] == "teacher_a" and private["organizationId"] == org

    async def seen(who: str) -> set[str]:
        status, page = await p[who].call("GET", TEMPLATES, system="false")
        assert status == 200, page
        return {item["name"] for item in page["items"]}

    assert await seen("teacher_a") == {"mine", "d1 only", "everyone"}
    assert await seen("teacher_b") == {"everyone"}
    assert await seen("admin") == {"d1 only", "everyone"}  # private is private, even to administrators
    assert await seen("student") == set()
    assert await seen("stranger") == set()
    assert (await p["teacher_b"].call("GET", f"{TEMPLATES}/{private['id']}"))[0] == 404
    assert (await p["stranger"].call("GET", f"{TEMPLATES}/{shared['id']}"))[0] == 404
    # system templates: every report type for staff; the transcript alone for a student
    status, system = await p["teacher_b"].call("GET", TEMPLATES, system="true", limit="100")
    assert {item["reportType"] for item in system["items"]} == set(lookups.values("report-type"))
    status, system = await p["student"].call("GET", TEMPLATES)
    assert [item["id"] for item in system["items"]] == ["system-learner-transcript"]
    # changing: owner or administrator; a system template: nobody
    status, answer = await p["teacher_b"].call("PATCH", f"{TEMPLATES}/{shared['id']}", {"name": "mine now"})
    assert status == 403, answer
    status, answer = await p["teacher_a"].call("PATCH", f"{TEMPLATES}/{department['id']}", {"name": "d1 renamed", "tags": ["x"]})
    assert status == 200 and answer["name"] == "d1 renamed" and answer["tags"] == ["x"] and answer["visibility"] == "department"
    status, answer = await p["admin"].call("PATCH", f"{TEMPLATES}/{department['id']}", {"output": {"format": "pdf"}})
    assert status == 200 and answer["output"] == {"format": "pdf"} and answer["ownerId"] == "teacher_a"
    assert (await p["admin"].call("PATCH", f"{TEMPLATES}/system-compliance", {"name": "x"}))[0] == 403
    status, answer = await p["teacher_a"].call("PATCH", f"{TEMPLATES}/{private['id']}", {"visibility": "public"})
    assert status == 400 and answer["field"] == "visibility"
    # a student may template only their own transcript
    status, answer = await p["student"].call("POST", TEMPLATES, {**base, "name": "spy"})
    assert status == 403 and answer["field"] == "reportType"
    assert (await p["teacher_b"].call("DELETE", f"{TEMPLATES}/{private['id']}"))[0] == 404
    assert (await p["teacher_a"].call("DELETE", f"{TEMPLATES}/{private['id']}"))[0] == 204
    assert (await p["teacher_a"].call("GET", f"{TEMPLATES}/{private['id']}"))[0] == 404


async def test_template_search_pages_duplicate_and_run(gateway: Gateway, settings: Settings) -> None:
    org = unique_org()
    admin = caller(gateway, settings, "subscriber-admin", org, "admin")
    for n in range(5):
        await created(admin, TEMPLATES, {"name": f"Weekly activity {n}", "reportType": "learner-activity", "tags": ["weekly"] if n % 2 else []})
    status, page = await admin.call("GET", TEMPLATES, search="WEEKLY act")
    assert [item["name"] for item in page["items"]] == [f"Weekly activity {n}" for n in range(5)]
    status, page = await admin.call("GET", TEMPLATES, tag="weekly")
    assert [item["name"] for item in page["items"]] == ["Weekly activity 1", "Weekly activity 3"]
    # keyset pages of 3 over saved and system templates: every one once, in (name, id) order
    names, cursor = [], None
    while True:
        status, page = await admin.call("GET", TEMPLATES, limit="3", **({"cursor": cursor} if cursor else {}))
        assert status == 200 and len(page["items"]) <= 3
        names += [item["name"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(names) == 5 + len(lookups.values("report-type")) and names == sorted(names, key=str.encode)
    status, answer = await admin.call("GET", TEMPLATES, cursor="nonsense")
    assert status == 400 and answer["field"] == "cursor"
    status, page = await admin.call("GET", TEMPLATES, system="false")
    assert status == 200 and len(page["items"]) == 5, "only the saved ones"
    for path, name in ((TEMPLATES, "system"), (SCHEDULES, "enabled")):
        status, answer = await admin.call("GET", path, **{name: "yes"})
        assert status == 400 and answer["field"] == name, answer
    # duplicate a system template, then run the copy with the request over its defaults
    status, copy = await admin.call("POST", f"{TEMPLATES}/system-at-risk-learners/duplicate", {"name": "Risk, 30 days", "parameters": {"inactiveDays": 30}})
    assert status == 201, copy
    assert (copy["ownerId"], copy["visibility"], copy["parameters"], copy["output"]) == ("admin", "private", {"inactiveDays": 30}, {"format": "xlsx"})
    status, job = await admin.call("POST", f"{TEMPLATES}/{copy['id']}/run", {"output": {"format": "csv"}, "parameters": {"includeInactive": True}})
    assert status == 202, job
    assert (job["templateId"], job["reportType"], job["name"], job["output"]["format"]) == (copy["id"], "at-risk-learners", "Risk, 30 days", "csv")
    assert job["parameters"] == {"inactiveDays": 30, "includeInactive": True}
    done = await admin.finished(job["id"])
    assert done["status"] == "completed", done
    # the compliance system template runs only with its courses and due date
    status, answer = await admin.call("POST", f"{TEMPLATES}/system-compliance/run")
    assert status == 400 and answer["field"] == "parameters.filters.courseIds"


async def test_schedules_check_timing_and_honour_visibility(gateway: Gateway, settings: Settings) -> None:
    org = unique_org()
    p = people(gateway, settings, org)
    body = {"name": "Berlin nightly", "definition": {"reportType": "engagement-trend"}, "cronExpression": "30 2 * * *", "timezone": "Europe/Berlin"}
    for change, field in (({"cronExpression": "30 25 * * *"}, "cronExpression"), ({"timezone": "Europe/Atlantis"}, "timezone"),
                          ({"cronExpression": None, "frequency": "hourly"}, "frequency"), ({"templateId": "nope", "definition": None}, "templateId")):  # fmt: skip
        status, answer = await p["admin"].call("POST", SCHEDULES, {**body, **change})
        assert status in (400, 404) and answer["field"] == field, (change, answer)
    mine = await created(p["teacher_a"], SCHEDULES, body)
    assert mine["enabled"] and mine["nextRunAt"] and mine["nextRunLocal"].endswith(("+01:00", "+02:00"))
    assert (mine["definition"]["reportType"], mine["definition"]["priority"]) == ("engagement-trend", "normal")
    status, upcoming = await p["teacher_a"].call("GET", f"{SCHEDULES}/{mine['id']}/upcoming", count="3")
    assert status == 200 and len(upcoming["items"]) == 3
    for item in upcoming["items"]:
        assert item["local"][11:19] in ("02:30:00", "03:30:00")  # 03:30 only on the skipped night
    assert (await p["teacher_a"].call("GET", f"{SCHEDULES}/{mine['id']}/upcoming", count="0"))[1]["field"] == "count"
    # from a template visible to the caller: its definition copied in, the schedule's output over it
    shared = await created(p["admin"], TEMPLATES, {"name": "t", "reportType": "course-completion", "visibility": "organization", "output": {"format": "pdf"}})
    from_template = await created(p["teacher_b"], SCHEDULES, {"name": "from t", "templateId": shared["id"], "frequency": "weekly",
                                                              "dayOfWeek": 1, "timeOfDay": "07:00", "output": {"format": "csv"}})  # fmt: skip
    assert from_template["definition"]["reportType"] == "course-completion" and from_template["output"] == {"format": "csv"}
    # the template changes; the schedule keeps the definition it copied, through its own changes too
    assert (await p["admin"].call("PATCH", f"{TEMPLATES}/{shared['id']}", {"reportType": "learner-activity"}))[0] == 200
    status, renamed = await p["teacher_b"].call("PATCH", f"{SCHEDULES}/{from_template['id']}", {"name": "from t, renamed"})
    assert status == 200, renamed
    assert (renamed["name"], renamed["templateId"], renamed["definition"]["reportType"]) == ("from t, renamed", shared["id"], "course-completion")
    assert renamed["nextRunLocal"][11:16] == "07:00"
    assert (await p["teacher_b"].call("GET", f"{SCHEDULES}/{mine['id']}"))[0] == 404
    assert (await p["stranger"].call("GET", f"{SCHEDULES}/{mine['id']}"))[0] == 404
    status, page = await p["admin"].call("GET", SCHEDULES)
    assert [item["name"] for item in page["items"]] == []  # both private
    assert (await p["teacher_b"].call("POST", f"{SCHEDULES}/{mine['id']}/pause"))[0] == 404
    status, answer = await p["teacher_a"].call("PATCH", f"{SCHEDULES}/{mine['id']}", {"visibility": "organization"})
    assert status == 200 and answer["visibility"] == "organization"
    assert (await p["teacher_b"].call("POST", f"{SCHEDULES}/{mine['id']}/pause"))[0] == 403  # sees it, may not change it
    status, paused = await p["admin"].call("POST", f"{SCHEDULES}/{mine['id']}/pause")
    assert status == 200 and paused["enabled"] is False and paused["nextRunAt"] is None
    status, page = await p["teacher_b"].call("GET", SCHEDULES, enabled="false")
    assert [item["id"] for item in page["items"]] == [mine["id"]]
    status, resumed = await p["teacher_a"].call("POST", f"{SCHEDULES}/{mine['id']}/resume")
    assert status == 200 and resumed["enabled"] and resumed["activeSince"] > mine["activeSince"]
    status, answer = await p["teacher_a"].call("PATCH", f"{SCHEDULES}/{mine['id']}", {"timezone": "Mars/Base"})
    assert status == 400 and answer["field"] == "timezone"
    assert (await p["teacher_a"].call("DELETE", f"{SCHEDULES}/{mine['id']}"))[0] == 204
    assert (await p["teacher_a"].call("GET", f"{SCHEDULES}/{mine['id']}"))[0] == 404


async def test_run_now_history_and_delivery_to_recipients(gateway: Gateway, settings: Settings, store: ClickHouseStore, bootstrap: str) -> None:
    org = unique_org()
    admin = caller(gateway, settings, "subscriber-admin", org, "admin")
    recipients = ["u_manager", "head@example.org"]
    schedule = await created(admin, SCHEDULES, {"name": "trend", "definition": {"reportType": "engagement-trend", "output": {"format": "csv"}},
                                                "cronExpression": YEARLY, "recipients": recipients})  # fmt: skip
    status, job = await admin.call("POST", f"{SCHEDULES}/{schedule['id']}/run")
    assert status == 202 and job["scheduleId"] == schedule["id"] and job["name"] == "trend"
    done = await admin.finished(job["id"])
    assert done["status"] == "completed", done
    status, history = await admin.call("GET", f"{SCHEDULES}/{schedule['id']}/history")
    assert status == 200 and [(run["jobId"], run["trigger"], run["status"]) for run in history["items"]] == [(job["id"], "manual", "completed")]
    status, again = await admin.call("GET", f"{SCHEDULES}/{schedule['id']}")
    assert again["lastJobId"] == job["id"] and again["lastRunAt"]
    rows = await eventually(
        lambda: store.query("SELECT recipients, format FROM report_notifications FINAL WHERE job_id = {job:String}", {"job": job["id"]}),
        lambda rows: len(rows) == 1,
    )
    assert rows[0]["recipients"] == recipients and rows[0]["format"] == "csv"
    consumer = AIOKafkaConsumer(ANALYTICS_EVENTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen: list[dict[str, Any]] = []

    async def read() -> list[dict[str, Any]]:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            seen.extend(m for m in (orjson.loads(r.value) for r in records) if m.get("reportId") == job["id"])
        return seen

    try:
        events = await eventually(read, lambda found: len(found) > 0, timeout=30)
    finally:
        await consumer.stop()
    assert events[0]["recipients"] == recipients and events[0]["scheduleId"] == schedule["id"]


async def test_metadata_and_filter_options_in_the_callers_scope(gateway: Gateway, settings: Settings, store: ClickHouseStore) -> None:
    client = await gateway.client()
    org = client.organization_id
    domain = [
        {"eventType": "UserCreated", "userId": "lea", "departmentId": "d1"},
        {"eventType": "UserCreated", "userId": "leo", "departmentId": "d1"},
        {"eventType": "UserCreated", "userId": "max", "departmentId": "d2"},
        {"eventType": "CourseCreated", "courseId": "c1", "contents": []},
        {"eventType": "CourseCreated", "courseId": "c2", "contents": []},
        {"eventType": "ClassCreated", "classId": "k1", "courseId": "c1", "departmentId": "d1", "teacherIds": ["t1"]},
        {"eventType": "ClassCreated", "classId": "k2", "courseId": "c2", "departmentId": "d2", "teacherIds": ["t2"]},
        {"eventType": "UserEnrolled", "userId": "lea", "courseId": "c1", "classId": "k1"},
        {"eventType": "UserEnrolled", "userId": "max", "courseId": "c2", "classId": "k2"},
    ]
    status, answer = await client.post("/v1/domain-events", domain)
    assert status == 200 and answer["totals"]["rejected"] == 0, answer

    async def counted() -> int:
        rows = await store.query("SELECT count() AS n FROM (SELECT user_id FROM learners WHERE organization_id = {org:String} GROUP BY user_id)", {"org": org})
        enrolled = await store.query("SELECT count() AS n FROM enrollments WHERE organization_id = {org:String}", {"org": org})
        classes = await store.query("SELECT uniqExact(class_id) AS n FROM classes WHERE organization_id = {org:String}", {"org": org})
        return int(rows[0]["n"]) + int(enrolled[0]["n"]) + int(classes[0]["n"])

    await eventually(counted, lambda n: n == 7, timeout=60)
    admin = caller(gateway, settings, "subscriber-admin", org, "admin")
    d1 = caller(gateway, settings, "teacher-admin", org, "head_d1", ("d1",))
    teacher = caller(gateway, settings, "teacher", org, "t2")
    status, types = await admin.call("GET", f"{METADATA}/report-types")
    assert status == 200 and {t["id"] for t in types["items"]} == set(lookups.values("report-type"))
    compliance = next(t for t in types["items"] if t["id"] == "compliance")
    assert {p["name"] for p in compliance["parameters"] if p["required"]} == {"dueDate", "filters.courseIds"}
    # each type offers the measures and groupings its own definition answers, not every lookup value
    trend = next(t for t in types["items"] if t["id"] == "engagement-trend")
    assert trend["dimensions"] == list(DEFINITIONS["engagement-trend"].dimensions) and "assessment" not in trend["dimensions"]
    assert compliance["measures"] == list(DEFINITIONS["compliance"].measures)
    status, formats = await d1.call("GET", f"{METADATA}/output-formats")
    assert {f["id"]: f["extension"] for f in formats["items"]}["xlsx"] == "xlsx"
    status, frequencies = await d1.call("GET", f"{METADATA}/lookups/schedule-frequency")
    assert [v["value"] for v in frequencies["items"]] == list(lookups.values("schedule-frequency"))
    assert (await d1.call("GET", f"{METADATA}/lookups/colours"))[0] == 404
    status, events = await d1.call("GET", f"{METADATA}/event-types")
    assert len(events["items"]) == len(lookups.values("event-type"))

    async def options(who: Caller, kind: str, **params: str) -> list[str]:
        status, page = await who.call("GET", f"{METADATA}/filter-options/{kind}", **params)
        assert status == 200, page
        return [item["id"] for item in page["items"]]

    assert await options(admin, "learners") == ["lea", "leo", "max"]
    assert await options(d1, "learners") == ["lea", "leo"]  # scope applied in the query
    assert await options(d1, "departments") == ["d1"] and await options(admin, "departments") == ["d1", "d2"]
    assert await options(d1, "courses") == ["c1"] and await options(admin, "courses") == ["c1", "c2"]
    assert await options(teacher, "learners") == ["max"] and await options(teacher, "classes") == ["k2"]
    assert await options(admin, "classes") == ["k1", "k2"] and await options(teacher, "departments") == ["d2"]
    assert await options(admin, "learners", search="LE") == ["lea", "leo"]
    status, first = await admin.call("GET", f"{METADATA}/filter-options/learners", limit="2")
    status, second = await admin.call("GET", f"{METADATA}/filter-options/learners", limit="2", cursor=first["nextCursor"])
    assert [i["id"] for i in first["items"] + second["items"]] == ["lea", "leo", "max"] and second["nextCursor"] is None
    assert (await admin.call("GET", f"{METADATA}/filter-options/planets"))[0] == 404
    # answered through the analytics answer cache, under the organization's generation
    redis = Redis.from_url(settings.redis_url or "")
    try:
        assert await redis.keys(f"lms-events:analytics:answer:{org}:*")
    finally:
        await redis.aclose()
