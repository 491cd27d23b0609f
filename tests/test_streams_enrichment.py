"""Enrichment from domain events and routing by category, on the real broker and chDB."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from lms_events.clickhouse import ClickHouseStore
from lms_events.topics import ALERTS, ANALYTICS_EVENTS, USER_EVENTS
from tests.support import (
    Gateway,
    accepted,
    eventually,
    new_event,
    produce,
    produce_domain_events,
    produce_events,
    reference_entity,
    rows_for_org,
    unique_org,
)

ENRICHED = "event_id, event_type, course_id, class_id, enrollment_id, department_id, user_role, content_type, score, duration_ms, enrichment_missing, toString(event_date) AS day, event_week, event_month"


def _ids() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {name: f"{name}_{suffix}" for name in ("user", "course", "class", "enrollment", "department", "game", "stage", "module")}


def _enrollment_story(org: str, ids: dict[str, str]) -> list[dict[str, Any]]:
    """A learner created, a course with a game stage, the learner enrolled in a class of it."""
    return [
        {"eventType": "UserCreated", "organizationId": org, "userId": ids["user"], "email": "x@example.org",
         "role": "student", "departmentId": ids["department"], "ageBand": "13-17", "consent": {"analytics": True}},
        {"eventType": "CourseCreated", "organizationId": org, "courseId": ids["course"], "title": "Piano 1",
         "category": "music", "contents": [{"gameId": ids["game"], "stageId": ids["stage"], "moduleId": ids["module"], "contentType": "game"}]},
        {"eventType": "CoursePublished", "organizationId": org, "courseId": ids["course"]},
        {"eventType": "UserEnrolled", "organizationId": org, "userId": ids["user"], "courseId": ids["course"],
         "classId": ids["class"], "enrollmentId": ids["enrollment"]},
    ]


async def _enrolled_learner(store: ClickHouseStore, bootstrap: str) -> tuple[str, dict[str, str]]:
    """A new organization whose learner enrolled; returns once the reference data is stored."""
    org, ids = unique_org(), _ids()
    await produce_domain_events(bootstrap, _enrollment_story(org, ids))
    await _known(store, org, ids)
    return org, ids


async def _known(store: ClickHouseStore, org: str, ids: dict[str, str]) -> None:
    await eventually(lambda: reference_entity(store, org, "enrollment", f"{ids['user']}/course/{ids['course']}"), bool)
    await eventually(lambda: reference_entity(store, org, "content", f"stage/{ids['stage']}"), bool)
    await eventually(lambda: reference_entity(store, org, "user", ids["user"]), bool)


def _play(org: str, ids: dict[str, str], timestamp: str, **properties: Any) -> dict[str, Any]:
    return accepted(
        new_event(
            organization_id=org,
            user_id=ids["user"],
            timestamp=timestamp,
            context={"page_url": "/student/play"},
            properties={"game_id": ids["game"], "stage_id": ids["stage"], "score": 87, "duration_ms": 125000, **properties},
        )
    )


async def test_enrolled_learner_playing_a_stage_gets_course_class_enrollment_department(
    stream_app: Any, store: ClickHouseStore, bootstrap: str
) -> None:
    org, ids = await _enrolled_learner(store, bootstrap)
    plays = [
        _play(org, ids, "2020-12-31T23:59:59.000Z"),
        _play(org, ids, "2021-01-03T10:00:00.000Z"),
        _play(org, ids, "2026-01-01T00:00:00.000Z"),
        _play(org, ids, "2024-12-30T12:00:00.000+02:00"),
    ]
    await produce_events(bootstrap, plays)

    stored = await eventually(lambda: rows_for_org(store, "events", org, ENRICHED), lambda rows: len(rows) == 4)
    by_id = {row["event_id"]: row for row in stored}
    for play in plays:
        row = by_id[play["event_id"]]
        assert row["course_id"] == ids["course"]
        assert row["class_id"] == ids["class"]
        assert row["enrollment_id"] == ids["enrollment"]
        assert row["department_id"] == ids["department"]
        assert row["user_role"] == "student"
        assert row["content_type"] == "game"
        assert row["score"] == 87 and row["duration_ms"] in (125000, "125000")
        assert row["enrichment_missing"] == []
    assert [(by_id[p["event_id"]]["day"], by_id[p["event_id"]]["event_week"], by_id[p["event_id"]]["event_month"]) for p in plays] == [
        ("2020-12-31", "2020-W53", "2020-12"),
        ("2021-01-03", "2020-W53", "2021-01"),
        ("2026-01-01", "2026-W01", "2026-01"),
        ("2024-12-30", "2025-W01", "2024-12"),
    ]


async def test_client_fields_win_and_unknown_references_are_flagged(
    stream_app: Any, store: ClickHouseStore, bootstrap: str
) -> None:
    org, ids = await _enrolled_learner(store, bootstrap)
    sent_by_client = _play(org, ids, "2026-01-27T14:30:45.123Z", course_id="course_from_client", content_type="quiz")
    sent_by_client["context"] = {"class_id": "class_from_client", "enrollment_id": "enr_from_client"}
    unknown = _play(org, {**ids, "user": "usr_not_yet_known", "stage": "stage_unknown", "game": "game_unknown"}, "2026-01-27T14:30:45.123Z")
    await produce_events(bootstrap, [sent_by_client, unknown])

    stored = await eventually(lambda: rows_for_org(store, "events", org, ENRICHED), lambda rows: len(rows) == 2)
    by_id = {row["event_id"]: row for row in stored}
    client = by_id[sent_by_client["event_id"]]
    assert (client["course_id"], client["class_id"], client["enrollment_id"], client["content_type"]) == (
        "course_from_client", "class_from_client", "enr_from_client", "quiz",
    )
    assert client["department_id"] == ids["department"]
    gap = by_id[unknown["event_id"]]
    assert gap["course_id"] == "" and gap["department_id"] == ""
    assert sorted(gap["enrichment_missing"]) == ["content", "user"]


async def test_reference_of_another_organization_is_not_used(stream_app: Any, store: ClickHouseStore, bootstrap: str) -> None:
    _owner, ids = await _enrolled_learner(store, bootstrap)
    other = unique_org()
    await produce_events(bootstrap, [_play(other, ids, "2026-01-27T14:30:45.123Z")])

    [row] = await eventually(lambda: rows_for_org(store, "events", other, ENRICHED), lambda rows: len(rows) == 1)
    assert row["department_id"] == "" and row["course_id"] == ""
    assert sorted(row["enrichment_missing"]) == ["content", "user"]


async def _consume_until(bootstrap: str, topic: str, found: Any, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Messages of `topic` (from the start) until `found(messages)` holds."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen: list[dict[str, Any]] = []
    try:
        async def poll() -> list[dict[str, Any]]:
            batches = await consumer.getmany(timeout_ms=200)
            seen.extend(orjson.loads(m.value) for records in batches.values() for m in records)
            return seen

        return await eventually(poll, found, timeout=timeout_s)
    finally:
        await consumer.stop()


async def test_perf_errors_and_bi_events_are_routed_to_their_tables_and_errors_alert(
    stream_app: Any, store: ClickHouseStore, bootstrap: str
) -> None:
    org, ids = await _enrolled_learner(store, bootstrap)
    # perf_events keeps 30 days: these must be recent or the TTL drops them at once.
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    base = {"organization_id": org, "user_id": ids["user"], "context": {}, "timestamp": now}
    page_load = accepted(new_event(**base, event_type="page_load_time", properties={"page_url": "/d", "load_time_ms": 1250}))
    js_error = accepted(new_event(**base, event_type="javascript_error", properties={"message": "x is undefined"}))
    subscription = accepted(new_event(**base, event_type="subscription_created", properties={"plan": "school"}))
    stage = _play(org, ids, "2026-01-27T14:30:45.123Z")
    await produce_events(bootstrap, [page_load, js_error, subscription, stage])

    perf = await eventually(
        lambda: rows_for_org(store, "perf_events", org, "event_id, event_type, is_error, duration_ms"), lambda rows: len(rows) == 2
    )
    assert {(r["event_type"], r["is_error"]) for r in perf} == {("page_load_time", False), ("javascript_error", True)}
    assert next(r for r in perf if r["event_type"] == "page_load_time")["duration_ms"] in (1250, "1250")
    [bi] = await eventually(
        lambda: rows_for_org(store, "bi_events", org, "event_id, department_id, user_role, event_month"), lambda rows: len(rows) == 1
    )
    assert (bi["event_id"], bi["department_id"], bi["user_role"]) == (subscription["event_id"], ids["department"], "student")
    events = await eventually(lambda: rows_for_org(store, "events", org, "event_id"), lambda rows: len(rows) == 1)
    assert [r["event_id"] for r in events] == [stage["event_id"]]

    alerts = await _consume_until(bootstrap, ALERTS, lambda seen: any(a["eventId"] == js_error["event_id"] for a in seen))
    alert = next(a for a in alerts if a["eventId"] == js_error["event_id"])
    assert alert["eventType"] == "javascript_error" and alert["organizationId"] == org
    assert not any(a["eventId"] in (page_load["event_id"], stage["event_id"]) for a in alerts)


async def test_burst_publishes_one_coalesced_analytics_update_per_entity(
    stream_app: Any, store: ClickHouseStore, bootstrap: str
) -> None:
    org, ids = await _enrolled_learner(store, bootstrap)
    burst = [_play(org, ids, "2026-01-27T14:30:45.123Z", score=score) for score in (60, 80, 100)]
    await produce_events(bootstrap, burst)

    def course_updates(seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # the topic carries the report worker's ReportGenerated too
        return [u for u in seen if u.get("entityType") == "course" and u.get("entityId") == ids["course"]]

    updates = await _consume_until(bootstrap, ANALYTICS_EVENTS, lambda seen: sum(u["metrics"]["events"] for u in course_updates(seen)) >= 3)
    mine = course_updates(updates)
    assert len(mine) < 3, "a burst in one window is coalesced"
    assert sum(u["metrics"]["events"] for u in mine) == 3
    assert {u["eventType"] for u in mine} == {"AnalyticsUpdated"}
    assert any(u.get("entityType") == "user" and u.get("entityId") == ids["user"] for u in updates)


async def test_poison_domain_event_is_rejected_and_agent_keeps_going(
    stream_app: Any, store: ClickHouseStore, bootstrap: str
) -> None:
    org, ids = unique_org(), _ids()
    marker = uuid.uuid4().hex
    await produce(
        bootstrap,
        [
            (USER_EVENTS, b"k", f"not json {marker}".encode()),
            (USER_EVENTS, b"k", orjson.dumps({"eventType": "UserTeleported", "userId": "u", "marker": marker})),
            (USER_EVENTS, b"k", orjson.dumps({"eventType": "UserEnrolled", "userId": "u", "marker": marker})),
            # Reference data and facts are per organization: a producer writing directly must name it.
            (USER_EVENTS, b"k", orjson.dumps({"eventType": "UserCreated", "userId": "u", "marker": marker})),
            # A valid date-time (RFC 3339 leap second) that no column can hold.
            (USER_EVENTS, b"k", orjson.dumps({"eventType": "UserCompletedCourse", "organizationId": org, "userId": "u",
                                              "courseId": "c", "completedAt": "2016-12-31T23:59:60Z", "marker": marker})),
        ],
    )
    await produce_domain_events(bootstrap, _enrollment_story(org, ids)[:1])

    await eventually(lambda: reference_entity(store, org, "user", ids["user"]), bool)
    rejected = await eventually(
        lambda: store.query(
            "SELECT rules, reasons, source FROM rejected_events FINAL WHERE raw LIKE {m:String}", {"m": f"%{marker}%"}
        ),
        lambda rows: len(rows) == 5,
    )
    assert {tuple(r["rules"]) for r in rejected} == {("domain_event",)}
    reasons = " ".join(r["reasons"] for r in rejected)
    assert "not JSON" in reasons and "UserTeleported" in reasons and "courseId" in reasons
    assert "organizationId: required" in reasons and "completedAt" in reasons


async def test_organizations_sharing_user_and_game_ids_each_get_their_own_reference_data(
    gateway: Gateway, store: ClickHouseStore
) -> None:
    """A shared game registry and colliding user ids: each organization's events are enriched
    from its own courses and departments, whichever organization wrote last."""
    suffix = uuid.uuid4().hex[:8]
    game = f"G-{int(suffix, 16) % 100_000:05d}"  # the game registry's id form (the property schema's pattern)
    user, stage = f"usr_{suffix}", f"{game}-stage_{suffix}"
    schools = [await gateway.client(), await gateway.client()]
    for school in schools:
        org = school.organization_id
        status, body = await school.post(
            "/v1/domain-events",
            [
                {"eventType": "UserCreated", "userId": user, "role": "student", "departmentId": f"dep_{org}"},
                {"eventType": "CourseCreated", "courseId": f"crs_{org}",
                 "contents": [{"gameId": game, "stageId": stage, "contentType": "game"}]},
                {"eventType": "UserEnrolled", "userId": user, "courseId": f"crs_{org}", "classId": f"cls_{org}"},
            ],
        )
        assert status == 200 and body["totals"]["accepted"] == 3
    for school in schools:
        await _known(store, school.organization_id, {"user": user, "course": f"crs_{school.organization_id}", "stage": stage})
    plays: dict[str, str] = {}
    for school in schools:
        properties = {"game_id": game, "stage_id": stage, "score": 50, "max_score": 100, "passed": False}
        play = school.event(user_id=user, context={}, properties=properties)
        status, body = await school.post_batch([play])
        assert status == 200 and body["results"][0]["status"] == "accepted", body
        plays[school.organization_id] = play["event_id"]

    for org, event_id in plays.items():
        [row] = await eventually(lambda: rows_for_org(store, "events", org, ENRICHED), lambda rows: len(rows) == 1)
        assert row["event_id"] == event_id
        assert (row["course_id"], row["class_id"], row["department_id"], row["user_role"], row["enrichment_missing"]) == (
            f"crs_{org}", f"cls_{org}", f"dep_{org}", "student", []
        )
