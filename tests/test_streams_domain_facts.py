"""Domain events stored as facts (`domain_facts`): columns per type, identity across replays
and re-posts, classes as reference data, on the real gateway, broker and chDB."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from lms_events.clickhouse import ClickHouseStore
from lms_events.runtime import run_reference_load
from lms_events.settings import Settings
from lms_events.topics import USER_EVENTS
from streams.reference_load import ReferenceFileError
from tests.support import Client, eventually, produce, reference_entity, unique_org, write_jsonl

FACT_COLUMNS = (
    "event_type, fact_id, toUnixTimestamp64Milli(occurred_at) AS occurred_ms, user_id, course_id, class_id, module_id, "
    "assessment_id, department_id, score, passed, time_spent_s, module_ids, teacher_ids, role, payload"
)
EMPTY = {
    "user_id": "", "course_id": "", "class_id": "", "module_id": "", "assessment_id": "", "department_id": "",
    "score": None, "passed": None, "time_spent_s": None, "module_ids": [], "teacher_ids": [], "role": "",
}


def _digest(event: dict[str, Any]) -> str:
    """The identity rule recomputed here: sha256 of the canonical JSON as sent, without organizationId."""
    content = {k: v for k, v in event.items() if k != "organizationId"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


async def _facts(store: ClickHouseStore, org: str, where: str = "1", params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return await store.query(
        f"SELECT {FACT_COLUMNS} FROM domain_facts FINAL WHERE organization_id = {{org:String}} AND {where} ORDER BY event_type, fact_id",
        {"org": org, **(params or {})},
    )


def _ids() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {n: f"{n}_{suffix}" for n in ("user", "teacher", "course", "class", "module", "assessment", "department", "game")}


def _one_of_each(ids: dict[str, str]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(domain event as posted, the fact columns expected besides fact_id, occurred_at and payload)."""
    user, course, klass, module, assessment = ids["user"], ids["course"], ids["class"], ids["module"], ids["assessment"]
    return [
        ({"eventType": "UserCreated", "eventId": f"evt-created-{user}", "userId": user, "role": "student",
          "departmentId": ids["department"], "email": "s@example.org", "occurredAt": "2025-03-01T08:00:00.000Z"},
         {"user_id": user, "role": "student", "department_id": ids["department"]}),
        ({"eventType": "UserUpdated", "userId": user, "role": "teacher"}, {"user_id": user, "role": "teacher"}),
        ({"eventType": "UserEnrolled", "userId": user, "courseId": course, "classId": klass, "enrollmentId": "enr_1",
          "enrolledAt": "2025-03-02T09:00:00.000Z", "occurredAt": "2025-03-05T00:00:00.000Z"},
         {"user_id": user, "course_id": course, "class_id": klass}),
        ({"eventType": "UserCompletedCourse", "userId": user, "courseId": course, "completedAt": "2025-04-01T10:00:00+02:00",
          "finalScore": 91.5},
         {"user_id": user, "course_id": course, "score": 91.5}),
        ({"eventType": "CourseCreated", "courseId": course, "title": "Piano 1", "instructorId": ids["teacher"],
          "contents": [{"gameId": f"{ids['game']}-a", "moduleId": "m2"}, {"gameId": f"{ids['game']}-b", "moduleId": "m1"},
                       {"gameId": f"{ids['game']}-c", "moduleId": "m2"}, {"gameId": f"{ids['game']}-d"}]},
         {"course_id": course, "module_ids": ["m2", "m1"]}),
        ({"eventType": "CourseContentsUpdated", "courseId": course,
          "contents": [{"stageId": "s1", "moduleId": "m3"}, {"stageId": "s2"}, {"stageId": "s3", "moduleId": "m1"}]},
         {"course_id": course, "module_ids": ["m3", "m1"]}),
        ({"eventType": "CoursePublished", "courseId": course, "publishedAt": "2025-03-01T12:00:00.000Z"}, {"course_id": course}),
        ({"eventType": "ClassCreated", "classId": klass, "courseId": course, "departmentId": ids["department"],
          "teacherIds": [ids["teacher"], "t2"], "title": "Piano 1 - A"},
         {"class_id": klass, "course_id": course, "department_id": ids["department"], "teacher_ids": [ids["teacher"], "t2"]}),
        ({"eventType": "ClassUpdated", "classId": klass, "teacherIds": ["t2"]}, {"class_id": klass, "teacher_ids": ["t2"]}),
        ({"eventType": "ModuleCompleted", "userId": user, "courseId": course, "moduleId": module, "score": 70,
          "completedAt": "2025-03-20T10:00:00.000Z"},
         {"user_id": user, "course_id": course, "module_id": module, "score": 70.0}),
        ({"eventType": "AssessmentStarted", "userId": user, "assessmentId": assessment, "courseId": course,
          "startedAt": "2025-03-21T10:00:00.000Z"},
         {"user_id": user, "assessment_id": assessment, "course_id": course}),
        ({"eventType": "AssessmentCompleted", "userId": user, "assessmentId": assessment, "courseId": course, "score": 55,
          "passed": False, "timeSpent": 612.5, "completedAt": "2025-03-21T10:10:12.500Z"},
         {"user_id": user, "assessment_id": assessment, "course_id": course, "score": 55.0, "passed": False, "time_spent_s": 612.5}),
    ]


OWN_TIME = {
    "UserEnrolled": "enrolledAt", "UserCompletedCourse": "completedAt", "ModuleCompleted": "completedAt",
    "AssessmentStarted": "startedAt", "AssessmentCompleted": "completedAt", "CoursePublished": "publishedAt",
}


async def test_every_domain_type_is_a_fact_with_its_columns(client: Client, store: ClickHouseStore) -> None:
    cases = _one_of_each(_ids())
    status, body = await client.post("/v1/domain-events", [event for event, _ in cases])
    assert status == 200 and body["totals"] == {"accepted": len(cases), "rejected": 0, "erased": 0}

    stored = await eventually(lambda: _facts(store, client.organization_id), lambda rows: len(rows) == len(cases))
    by_type = {row["event_type"]: row for row in stored}
    assert set(by_type) == {event["eventType"] for event, _ in cases}
    for (event, expected), result in zip(cases, body["results"], strict=True):
        row = by_type[event["eventType"]]
        published = orjson.loads(row["payload"])
        fact_id = event.get("eventId") or _digest(event)
        assert row["fact_id"] == fact_id == result["event_id"], event["eventType"]
        assert published == {**event, "eventId": fact_id, "organizationId": client.organization_id,
                             "occurredAt": event.get("occurredAt", published["occurredAt"])}
        own_time = event.get(OWN_TIME.get(event["eventType"], ""))
        assert int(row["occurred_ms"]) == _ms(own_time or published["occurredAt"]), event["eventType"]
        columns = {name: row[name] for name in EMPTY}
        assert columns == {**EMPTY, **expected}, event["eventType"]


async def test_replayed_and_reposted_domain_events_are_one_fact_each(
    client: Client, store: ClickHouseStore, bootstrap: str
) -> None:
    org, user = client.organization_id, f"usr_{uuid.uuid4().hex[:8]}"
    reposted = {"eventType": "UserEnrolled", "userId": user, "courseId": "crs_repost"}
    named = {"eventType": "UserEnrolled", "eventId": f"enr-{user}", "userId": user, "courseId": "crs_named"}
    for _ in range(2):
        status, body = await client.post("/v1/domain-events", [reposted, named])
        assert status == 200 and body["totals"]["accepted"] == 2
    # A gateway before eventId published stamped messages without one; replayed, with another stamp each time.
    legacy = {"eventType": "UserEnrolled", "organizationId": org, "userId": user, "courseId": "crs_legacy"}
    await produce(bootstrap, [
        (USER_EVENTS, user.encode(), orjson.dumps({**legacy, "occurredAt": "2025-01-01T00:00:00.000Z"})),
        (USER_EVENTS, user.encode(), orjson.dumps({**legacy, "occurredAt": "2025-01-02T00:00:00.000Z"})),
    ])
    # Same key, so same partition: once this last one is stored, the ones before it are.
    status, _ = await client.post("/v1/domain-events", {"eventType": "UserEnrolled", "userId": user, "courseId": "crs_last"})
    assert status == 200
    await eventually(lambda: _facts(store, org, "course_id = 'crs_last'"), lambda rows: len(rows) == 1)

    stored = await _facts(store, org, "user_id = {u:String}", {"u": user})
    assert sorted(row["course_id"] for row in stored) == ["crs_last", "crs_legacy", "crs_named", "crs_repost"]
    by_course = {row["course_id"]: row for row in stored}
    assert by_course["crs_repost"]["fact_id"] == _digest(reposted)
    assert by_course["crs_named"]["fact_id"] == f"enr-{user}"
    assert by_course["crs_legacy"]["fact_id"] == _digest(legacy)


async def test_class_events_become_class_reference_data(client: Client, store: ClickHouseStore) -> None:
    org, ids = client.organization_id, _ids()
    status, _ = await client.post(
        "/v1/domain-events",
        [
            {"eventType": "ClassCreated", "classId": ids["class"], "courseId": ids["course"], "departmentId": ids["department"],
             "teacherIds": [ids["teacher"]]},
            {"eventType": "ClassUpdated", "classId": ids["class"], "teacherIds": [ids["teacher"], "t_assistant"]},
        ],
    )
    assert status == 200

    def updated(rows: list[dict[str, Any]]) -> bool:
        return bool(rows) and len(orjson.loads(rows[0]["attributes"]).get("teacher_ids", [])) == 2

    [entity] = await eventually(lambda: reference_entity(store, org, "class", ids["class"]), updated)
    assert orjson.loads(entity["attributes"]) == {
        "organization_id": org, "course_id": ids["course"], "department_id": ids["department"],
        "teacher_ids": [ids["teacher"], "t_assistant"],
    }


@pytest.mark.parametrize(
    ("event_id", "rule"), [("", "minLength"), ("x" * 129, "maxLength"), (17, "type")]
)
async def test_bad_event_id_is_rejected_naming_field_and_rule(client: Client, event_id: Any, rule: str) -> None:
    status, body = await client.post("/v1/domain-events", {"eventType": "ClassCreated", "classId": "c1", "eventId": event_id})
    assert status == 200 and body["totals"] == {"accepted": 0, "rejected": 1, "erased": 0}
    [error] = body["results"][0]["errors"]
    assert (error["field"], error["rule"]) == ("eventId", rule)


async def test_a_leap_second_is_rejected_naming_the_field(client: Client) -> None:
    """RFC 3339 admits 23:59:60, which no stored time can hold: refused here, not lost later."""
    event = {"eventType": "UserCompletedCourse", "userId": "u1", "courseId": "c1", "completedAt": "2016-12-31T23:59:60Z"}
    status, body = await client.post("/v1/domain-events", event)
    assert status == 200 and body["totals"] == {"accepted": 0, "rejected": 1, "erased": 0}
    [error] = body["results"][0]["errors"]
    assert (error["field"], error["rule"]) == ("completedAt", "format")


async def test_reference_load_takes_classes_and_loading_twice_stores_each_fact_once(
    stream_app: Any, store: ClickHouseStore, settings: Settings, tmp_path: Path
) -> None:
    org, ids = unique_org(), _ids()
    klass = {"eventType": "ClassCreated", "organizationId": org, "classId": ids["class"], "courseId": ids["course"],
             "teacherIds": [ids["teacher"]]}
    path = write_jsonl(tmp_path / "classes.jsonl", [klass])
    assert await run_reference_load(settings, path) == 1
    [entity] = await eventually(lambda: reference_entity(store, org, "class", ids["class"]), bool)
    assert orjson.loads(entity["attributes"])["teacher_ids"] == [ids["teacher"]]
    await eventually(lambda: _facts(store, org), lambda rows: len(rows) == 1)

    # Loaded again, then a marker on the same topic partition (same class key) to know it was read.
    assert await run_reference_load(settings, path) == 1
    marker = {"eventType": "ClassUpdated", "organizationId": org, "classId": ids["class"], "title": "marker"}
    assert await run_reference_load(settings, write_jsonl(tmp_path / "marker.jsonl", [marker])) == 1
    await eventually(lambda: _facts(store, org, "event_type = 'ClassUpdated'"), lambda rows: len(rows) == 1)
    [created] = await _facts(store, org, "event_type = 'ClassCreated'")
    assert created["fact_id"] == _digest(klass)


async def test_reference_file_lines_must_name_their_organization(settings: Settings, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "no_org.jsonl", [{"eventType": "ClassCreated", "classId": "c1"}])
    with pytest.raises(ReferenceFileError) as info:
        await run_reference_load(settings, path)
    assert "line 1" in str(info.value) and "organizationId" in str(info.value)
