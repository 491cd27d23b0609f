"""Every figure of the analytics API equals an independent recomputation.

A seeded data set (tests/analytics_data.py: two organizations sharing
user and course ids, departments, courses with modules, classes,
enrollments, completions, assessments, 400 days of events) is posted
through the gateway, flows through Kafka and the stream app into
ClickHouse, and is read back through the API; tests/analytics_model.py
recomputes every answer in plain Python from the posted lists, following
METRICS.md. Equal, not close: the only field left out is calculatedAt.

Then the same answers after a replay of every Kafka message, and the
isolation table: what each role may and may not see.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest_asyncio
from aiokafka import AIOKafkaConsumer

from lms_events import tokens
from lms_events.clickhouse import ClickHouseStore
from lms_events.drain import consumer_lag
from lms_events.settings import Settings
from lms_events.topics import DOMAIN_TOPICS, PIPELINE_TOPICS, RAW_EVENTS, STREAM_APP_ID
from streams.backfill import BackfillScope, run_backfill
from tests import analytics_model as model
from tests.analytics_data import Dataset, Targets, generate
from tests.support import Client, Gateway, eventually, produce

SEED = 20261202
TODAY = datetime.now(UTC).date()
UNTILS = (TODAY, TODAY - timedelta(days=45), TODAY - timedelta(days=200))
PAGE = 7
CHUNK = 200


@dataclass
class Posted:
    data: Dataset
    clients: dict[str, Client]


async def _post_all(client: Client, path: str, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), CHUNK):
        status, answer = await client.post(path, items[start : start + CHUNK])
        assert status == 200, answer
        refused = [r for r in answer["results"] if r["status"] != "accepted"]
        assert not refused, refused[:3]


async def _count(store: ClickHouseStore, sql: str, organization_id: str) -> int:
    rows = await store.query(sql, {"org": organization_id})
    return int(rows[0]["n"])


async def post_dataset(gateway: Gateway, store: ClickHouseStore, data: Dataset) -> dict[str, Client]:
    """Post the domain events, wait until the stream app knows them, then the events; wait until stored."""
    clients = {org: await gateway.client(org) for org in data.organization_ids}
    for org, client in clients.items():
        facts = [fact for fact in data.domain_events if fact["organizationId"] == org]
        await _post_all(client, "/v1/domain-events", facts)
    for org in clients:
        users = {fact["userId"] for fact in data.domain_events if fact["organizationId"] == org and fact["eventType"] == "UserCreated"}
        await eventually(
            lambda org=org: _count(
                store,
                "SELECT count() AS n FROM reference_entities_by_organization FINAL WHERE organization_id = {org:String} AND kind = 'user'",
                org,
            ),
            lambda n, users=users: n >= len(users),
            timeout=60,
        )
        await eventually(
            lambda org=org: _count(store, "SELECT count() AS n FROM domain_facts FINAL WHERE organization_id = {org:String}", org),
            lambda n, org=org: n >= len(model._unique_facts(f for f in data.domain_events if f["organizationId"] == org)),
            timeout=60,
        )
    for org, client in clients.items():
        await _post_all(client, "/v1/batch", [event for event in data.events if event["organization_id"] == org])
    for org in clients:
        expected = sum(1 for event in data.events if event["organization_id"] == org)
        await eventually(
            lambda org=org: _count(store, "SELECT count() AS n FROM events FINAL WHERE organization_id = {org:String}", org),
            lambda n, expected=expected: n == expected,
            timeout=90,
        )
    return clients


@pytest_asyncio.fixture(scope="module")
async def posted(gateway: Gateway, store: ClickHouseStore) -> AsyncIterator[Posted]:
    data = generate(SEED, today=TODAY)
    yield Posted(data, await post_dataset(gateway, store, data))


def token_for(settings: Settings, scope: model.Scope) -> str:
    secret = tokens.signing_secret(settings)
    org = None if scope.role == "system-admin" else scope.organization_id
    return tokens.mint(secret, sub=scope.sub or "admin", role=scope.role, organization_id=org, departments=scope.departments)


async def api_get(gateway: Gateway, settings: Settings, scope: model.Scope, path: str, **params: str) -> tuple[int, Any]:
    if scope.role == "system-admin" and scope.organization_id:
        params["organizationId"] = scope.organization_id
    headers = {"Authorization": f"Bearer {token_for(settings, scope)}"}
    async with gateway.session.get(f"{gateway.url}{path}", headers=headers, params=params) as response:
        return response.status, await response.json(content_type=None)


async def api_pages(gateway: Gateway, settings: Settings, scope: model.Scope, path: str, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page_params = {**params, "limit": str(PAGE), **({"cursor": cursor} if cursor else {})}
        status, page = await api_get(gateway, settings, scope, path, **page_params)
        assert status == 200, page
        assert len(page["items"]) <= PAGE
        items += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            return items


def scopes_of(targets: Targets) -> list[model.Scope]:
    org = targets.organization_id
    return [
        model.Scope("system-admin", org),
        model.Scope("subscriber-admin", org, "admin"),
        model.Scope("teacher-admin", org, targets.teacher_admin_id, targets.teacher_admin_departments),
        model.Scope("teacher", org, targets.teacher_id),
        model.Scope("student", org, targets.student_id),
    ]


def without_calculated_at(answer: dict[str, Any]) -> dict[str, Any]:
    answer = dict(answer)
    answer["metrics"] = [{k: v for k, v in metric.items() if k != "calculatedAt"} for metric in answer["metrics"]]
    answer["summary"] = {k: v for k, v in answer["summary"].items() if k != "calculatedAt"}
    return answer


def all_scopes(data: Dataset) -> list[model.Scope]:
    return [scope for org in data.organization_ids for scope in scopes_of(data.targets[org])]


async def check_dashboards(gateway: Gateway, settings: Settings, data: Dataset) -> int:
    checked = 0
    # (A system-admin's all-organization dashboard also counts the other tests' organizations of
    # this shared store: test_system_admin_sees_every_organization checks it as a lower bound.)
    for scope in all_scopes(data):
        targets = data.targets[scope.organization_id or data.organization_ids[0]]
        filter_sets: list[dict[str, str]] = [{}]
        if scope.organization_id:
            filter_sets += [
                {"courseId": targets.course_ids[0]},
                {"classId": targets.class_ids[0]},
                {"departmentId": targets.department_ids[0]},
                {"courseId": targets.course_ids[1], "departmentId": targets.department_ids[1]},
            ]
        for until, timeframe, filters in itertools.product(UNTILS, model.TIMEFRAMES, filter_sets):
            if filters and timeframe not in ("30d", "1y"):
                continue
            params = {"until": until.isoformat(), "timeframe": timeframe}
            if filters:
                params["filters"] = model.json.dumps(filters)
            status, answer = await api_get(gateway, settings, scope, "/api/v1/dashboard", **params)
            assert status == 200, answer
            expected = model.dashboard(data, scope, timeframe=timeframe, until=until, filters=filters)
            assert without_calculated_at(answer) == expected, (scope, params)
            checked += 1
    return checked


async def check_entities(gateway: Gateway, settings: Settings, data: Dataset) -> int:
    checked = 0
    for scope in all_scopes(data):
        targets = data.targets[scope.organization_id]  # type: ignore[index]
        cases = [
            *((f"/api/v1/users/{user}/analytics", model.user_analytics, user) for user in (targets.student_id, targets.other_student_id, targets.teacher_id, "nobody")),
            *((f"/api/v1/courses/{course}/analytics", model.course_analytics, course) for course in (*targets.course_ids, "no-course")),
            *((f"/api/v1/assessments/{a}/analytics", model.assessment_analytics, a) for a in (*targets.assessment_ids, "no-assessment")),
        ]
        for path, recompute, entity_id in cases:
            expected = recompute(data, scope, entity_id)
            status, answer = await api_get(gateway, settings, scope, path)
            if expected is None:
                assert status == 404, (scope, path, answer)
            else:
                assert (status, answer) == (200, expected), (scope, path)
            checked += 1
    return checked


async def check_lists(gateway: Gateway, settings: Settings, data: Dataset) -> int:
    checked = 0
    for scope in all_scopes(data):
        targets = data.targets[scope.organization_id]  # type: ignore[index]
        for until in UNTILS[:2]:
            for status in (None, *("not_started", "in_progress", "completed", "dropped")):
                params = {"until": until.isoformat(), **({"status": status} if status else {})}
                got = await api_pages(gateway, settings, scope, "/api/v1/learning-progress", **params)
                assert got == model.learning_progress(data, scope, until=until, status=status), (scope, params)
                checked += 1
        got = await api_pages(gateway, settings, scope, "/api/v1/learning-progress", courseId=targets.course_ids[0], until=TODAY.isoformat())
        assert got == model.learning_progress(data, scope, until=TODAY, course_id=targets.course_ids[0])
        start = datetime.combine(TODAY - timedelta(days=60), datetime.min.time(), UTC)
        for params, kwargs in (
            ({"userId": targets.student_id}, {"user_id": targets.student_id}),
            ({"courseId": targets.course_ids[0], "from": start.date().isoformat()}, {"course_id": targets.course_ids[0], "start": start}),
            ({"classId": targets.class_ids[0], "eventType": "game_stage_complete"}, {"class_id": targets.class_ids[0], "event_type": "game_stage_complete"}),
        ):
            got = await api_pages(gateway, settings, scope, "/api/v1/events", **params)
            assert got == model.events_list(data, scope, **kwargs), (scope, params)
            checked += 1
    return checked


async def test_system_admin_sees_every_organization(gateway: Gateway, settings: Settings, posted: Posted) -> None:
    everyone = model.Scope("system-admin", None)
    status, answer = await api_get(gateway, settings, everyone, "/api/v1/dashboard", until=TODAY.isoformat(), timeframe="1y")
    assert status == 200
    expected = model.dashboard(posted.data, everyone, timeframe="1y", until=TODAY)
    for got, want in zip(answer["metrics"], expected["metrics"], strict=True):
        if want["metricType"] in ("total_users", "active_users", "total_courses", "total_enrollments"):
            assert got["value"] >= want["value"], (got, want)
    assert answer["summary"]["totalEvents"] >= expected["summary"]["totalEvents"]


async def test_every_answer_equals_the_recomputation(gateway: Gateway, settings: Settings, posted: Posted) -> None:
    assert await check_dashboards(gateway, settings, posted.data) > 0
    assert await check_entities(gateway, settings, posted.data) > 0
    assert await check_lists(gateway, settings, posted.data) > 0


async def test_isolation_table(gateway: Gateway, settings: Settings, posted: Posted) -> None:
    """What each role may and may not see; shared ids in two organizations never mix."""
    data = posted.data
    org, other_org = data.organization_ids
    own = data.targets[org]
    student = model.Scope("student", org, own.student_id)
    teacher = model.Scope("teacher", org, own.teacher_id)
    other_teacher = model.Scope("teacher", org, own.other_teacher_id)
    teacher_admin = model.Scope("teacher-admin", org, own.teacher_admin_id, own.teacher_admin_departments)
    admin = model.Scope("subscriber-admin", org, "admin")
    taught = model.members_of(data, teacher)
    outside_department = model.members_of(data, admin) - model.members_of(data, teacher_admin)
    assert taught and outside_department and own.other_student_id not in taught

    table: list[tuple[model.Scope, str, dict[str, str], int]] = [
        (student, f"/api/v1/users/{own.student_id}/analytics", {}, 200),
        (student, f"/api/v1/users/{own.other_student_id}/analytics", {}, 404),
        (student, "/api/v1/dashboard", {"organizationId": other_org}, 403),
        (teacher, f"/api/v1/users/{own.student_id}/analytics", {}, 200),
        (teacher, f"/api/v1/users/{own.other_student_id}/analytics", {}, 404),
        (other_teacher, f"/api/v1/users/{sorted(taught - model.members_of(data, other_teacher))[0]}/analytics", {}, 404),
        (teacher_admin, f"/api/v1/users/{sorted(outside_department)[0]}/analytics", {}, 404),
        (teacher_admin, "/api/v1/learning-progress", {"organizationId": other_org}, 403),
        (admin, "/api/v1/events", {"organizationId": other_org}, 403),
        (admin, f"/api/v1/users/{own.other_student_id}/analytics", {}, 200),
    ]
    for scope, path, params, expected in table:
        status, answer = await api_get(gateway, settings, scope, path, **params)
        assert status == expected, (scope.role, path, params, answer)

    # Lists never hold anyone outside the scope, whatever is asked for.
    for scope in (student, teacher, teacher_admin):
        members = model.members_of(data, scope)
        for path in ("/api/v1/learning-progress", "/api/v1/events"):
            for params in ({}, {"userId": own.other_student_id}, {"userId": sorted(outside_department)[0]}):
                items = await api_pages(gateway, settings, scope, path, **params)
                assert {item["userId"] for item in items} <= members, (scope.role, path, params)
    # Filters narrow, never widen: a student filtering by a department sees their own numbers or fewer.
    for filters in ({"departmentId": own.department_ids[0]}, {"classId": own.class_ids[1]}, {"courseId": own.course_ids[2]}):
        status, answer = await api_get(gateway, settings, student, "/api/v1/dashboard", filters=model.json.dumps(filters), until=TODAY.isoformat())
        assert status == 200
        assert without_calculated_at(answer) == model.dashboard(data, student, until=TODAY, filters=filters)
        assert answer["metrics"][0]["value"] <= 1  # total_users: the student alone
    # The same user id in the other organization is another person: different figures, each its own.
    mine = await api_get(gateway, settings, admin, f"/api/v1/users/{own.student_id}/analytics")
    theirs = await api_get(gateway, settings, model.Scope("subscriber-admin", other_org, "admin"), f"/api/v1/users/{own.student_id}/analytics")
    assert mine[1] == model.user_analytics(data, admin, own.student_id)
    assert theirs[0] == 404 or theirs[1] == model.user_analytics(data, model.Scope("subscriber-admin", other_org, "admin"), own.student_id)
    assert mine[1] != theirs[1]


def _organization_of(value: bytes) -> str | None:
    """The organization a message carries data of; None for other tests' poison messages."""
    try:
        message = orjson.loads(value)
        if "events" in message:
            return message["events"][0]["organization_id"]
        return message.get("organizationId")
    except (orjson.JSONDecodeError, AttributeError, IndexError, KeyError, TypeError):
        return None


async def _messages_of(bootstrap: str, organizations: set[str]) -> list[tuple[str, bytes, bytes]]:
    """Every message of events.raw and the domain topics that carries these organizations' data."""
    consumer = AIOKafkaConsumer(
        RAW_EVENTS, *DOMAIN_TOPICS, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[tuple[str, bytes, bytes]] = []
    try:
        idle = 0
        while idle < 2:  # two empty fetches in a row: the topics are read to their end
            batches = await consumer.getmany(timeout_ms=1000)
            idle = 0 if batches else idle + 1
            for records in batches.values():
                for record in records:
                    if _organization_of(record.value) in organizations:
                        found.append((record.topic, record.key, record.value))
    finally:
        await consumer.stop()
    return found


async def test_a_replay_of_every_message_changes_no_answer(
    gateway: Gateway, settings: Settings, bootstrap: str, posted: Posted
) -> None:
    data = posted.data
    messages = await _messages_of(bootstrap, set(data.organization_ids))
    assert sum(1 for topic, _, _ in messages if topic == RAW_EVENTS) > 0
    await produce(bootstrap, messages)
    await eventually(lambda: consumer_lag(bootstrap, STREAM_APP_ID, PIPELINE_TOPICS), lambda lag: lag == 0, timeout=120)
    for org in data.organization_ids:
        admin = model.Scope("subscriber-admin", org, "admin")
        for until, timeframe in itertools.product(UNTILS, ("7d", "1y")):
            status, answer = await api_get(gateway, settings, admin, "/api/v1/dashboard", until=until.isoformat(), timeframe=timeframe)
            assert without_calculated_at(answer) == model.dashboard(data, admin, timeframe=timeframe, until=until)
        targets = data.targets[org]
        for course in targets.course_ids:
            assert (await api_get(gateway, settings, admin, f"/api/v1/courses/{course}/analytics"))[1] == model.course_analytics(data, admin, course)
        for assessment in targets.assessment_ids:
            status, answer = await api_get(gateway, settings, admin, f"/api/v1/assessments/{assessment}/analytics")
            assert answer == model.assessment_analytics(data, admin, assessment)
        got = await api_pages(gateway, settings, admin, "/api/v1/learning-progress", until=TODAY.isoformat())
        assert got == model.learning_progress(data, admin, until=TODAY)


async def test_rollups_after_backfill_equal_the_recomputation(
    gateway: Gateway, settings: Settings, store: ClickHouseStore, posted: Posted
) -> None:
    """Events posted before their users were known: stored without department, then backfilled."""
    data = generate(SEED + 1, today=TODAY, organizations=1, organization_ids=[f"org_backfill_{SEED}"], enrollments=60)
    org = data.organization_ids[0]
    client = await gateway.client(org)
    await _post_all(client, "/v1/batch", data.events)
    await eventually(
        lambda: _count(store, "SELECT count() AS n FROM events FINAL WHERE organization_id = {org:String} AND department_id = ''", org),
        lambda n: n == len(data.events),
        timeout=90,
    )
    await _post_all(client, "/v1/domain-events", data.domain_events)
    await eventually(
        lambda: _count(store, "SELECT count() AS n FROM domain_facts FINAL WHERE organization_id = {org:String}", org),
        lambda n: n >= len(model._unique_facts(data.domain_events)),
        timeout=60,
    )
    users = {fact["userId"] for fact in data.domain_events if fact["eventType"] == "UserCreated"}
    await eventually(
        lambda: _count(
            store,
            "SELECT count() AS n FROM reference_entities_by_organization FINAL WHERE organization_id = {org:String} AND kind = 'user'",
            org,
        ),
        lambda n: n >= len(users),
    )
    async for _ in run_backfill(store, BackfillScope(organization_id=org)):
        pass
    targets = data.targets[org]
    for scope in scopes_of(targets):
        for filters in ({}, {"departmentId": targets.department_ids[0]}):
            status, answer = await api_get(
                gateway, settings, scope, "/api/v1/dashboard", until=TODAY.isoformat(), timeframe="1y", filters=model.json.dumps(filters)
            )
            assert without_calculated_at(answer) == model.dashboard(data, scope, timeframe="1y", until=TODAY, filters=filters), scope
        for user in (targets.student_id, targets.other_student_id):
            assert (await api_get(gateway, settings, scope, f"/api/v1/users/{user}/analytics"))[1] == (
                model.user_analytics(data, scope, user) or {"error": "no user with this id in your scope"}
            )
