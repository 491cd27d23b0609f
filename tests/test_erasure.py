"""Erasure of one person (privacy/erasure.py), end to end through the real
gateway and stream app, while events of theirs keep arriving: afterwards
no table (found from system.columns) holds a row of theirs, their later
events are `erased` (at the gateway, and in the stream for what was
already in Kafka) and counted, the rollups equal a recomputation without
them, a report made before expires, and the other users are untouched."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.erased import reload_tombstones
from ingest.keys import REDIS
from ingest.privacy import PrivacyFilter, pii_secret
from lms_events import tokens
from lms_events.clickhouse import ClickHouseStore
from lms_events.settings import Settings
from lms_events.tombstones import Digester, redis_key
from tests.support import Client, Gateway, accepted, eventually, produce_events

VICTIM, OTHERS = "u_gone", ("u_stay_1", "u_stay_2")
COURSE = "c_erase"


def bearer(settings: Settings, organization_id: str | None, role: str = "subscriber-admin", sub: str = "admin") -> dict[str, str]:
    token = tokens.mint(tokens.signing_secret(settings), sub=sub, role=role, organization_id=organization_id)
    return {"Authorization": f"Bearer {token}"}


async def call(gateway: Gateway, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> tuple[int, Any]:
    async with gateway.session.request(method, f"{gateway.url}{path}", headers=headers, **kwargs) as response:
        return response.status, await response.json(content_type=None)


def alias_of(settings: Settings, organization_id: str, user_id: str) -> str:
    return PrivacyFilter(pii_secret(settings.pii_secret, settings.data_dir)).pseudonym(organization_id, user_id)


def day(days_ago: int, seconds: int = 0) -> str:
    moment = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=days_ago) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def rows_naming(store: ClickHouseStore, organization_id: str, ids: tuple[str, ...]) -> dict[str, int]:
    """Rows naming `ids` in every table with a user column, discovered here from system.columns
    (independently of the code under test), and in the raw rejected events."""
    columns = await store.query(
        """SELECT c.table AS table, c.name AS column FROM system.columns AS c
           JOIN system.tables AS t ON t.database = c.database AND t.name = c.table
           WHERE c.database = currentDatabase() AND c.name IN ('user_id', 'subject_user_id', 'actor')
             AND t.engine NOT IN ('MaterializedView', 'View', 'Null')"""
    )
    found: dict[str, int] = {}
    params = {"org": organization_id, "a": ids[0], "b": ids[1]}
    for row in columns:
        n = await store.query(
            f"SELECT count() AS n FROM {row['table']} WHERE organization_id = {{org:String}} AND {row['column']} IN ({{a:String}}, {{b:String}})",
            params,
        )
        if int(n[0]["n"]):
            found[f"{row['table']}.{row['column']}"] = int(n[0]["n"])
    raw = await store.query(
        "SELECT count() AS n FROM rejected_events WHERE organization_id = {org:String} AND (position(raw, {a:String}) > 0 OR position(raw, {b:String}) > 0)",
        params,
    )
    if int(raw[0]["n"]):
        found["rejected_events.raw"] = int(raw[0]["n"])
    return found


async def activity(store: ClickHouseStore, organization_id: str, *, recomputed: bool) -> list[tuple[Any, ...]]:
    """activity_daily of the organization, as stored or as recomputed from `events`."""
    if recomputed:
        sql = """SELECT toString(event_date) d, department_id, course_id, class_id, event_type, count() n, uniqExactIf(user_id, user_id != '') u,
                        sum(if(event_category = 'learning_progress', toInt64(ifNull(duration_ms, 0)), 0)) l,
                        sum(toFloat64(ifNull(score, 0))) s, countIf(score IS NOT NULL) c
                 FROM events FINAL WHERE organization_id = {org:String} GROUP BY d, department_id, course_id, class_id, event_type"""
    else:
        sql = """SELECT toString(event_date) d, department_id, course_id, class_id, event_type, sum(events) n, uniqExactMerge(users) u,
                        sum(learning_ms) l, sum(score_sum) s, sum(score_count) c
                 FROM activity_daily WHERE organization_id = {org:String} GROUP BY d, department_id, course_id, class_id, event_type HAVING n != 0"""
    rows = await store.query(sql, {"org": organization_id})
    return sorted(tuple(row.values()) for row in rows)


async def stored_events(store: ClickHouseStore, organization_id: str) -> dict[str, int]:
    rows = await store.query(
        "SELECT user_id, count() AS n FROM events FINAL WHERE organization_id = {org:String} GROUP BY user_id", {"org": organization_id}
    )
    return {row["user_id"]: int(row["n"]) for row in rows}


async def _seed(client: Client, settings: Settings) -> None:
    """Every kind of row about the victim and the others: facts, events over days, a pii event,
    consent, a rejected event."""
    domain = [{"eventType": "CourseCreated", "courseId": COURSE, "contents": [{"contentId": "G-01542", "moduleId": "m1"}]}]
    for user in (VICTIM, *OTHERS):
        domain += [
            {"eventType": "UserCreated", "userId": user, "departmentId": "d1"},
            {"eventType": "UserEnrolled", "userId": user, "courseId": COURSE},
            {"eventType": "AssessmentCompleted", "userId": user, "assessmentId": "a1", "courseId": COURSE, "score": 70, "passed": True},
        ]
    status, answer = await client.post("/v1/domain-events", domain)
    assert status == 200 and answer["totals"]["rejected"] == 0, answer
    events = [
        client.event(user_id=user, timestamp=day(days_ago, seconds=n), properties={"game_id": "G-01542", "stage_id": "G-01542-quiz", "score": 50 + n, "max_score": 100, "passed": True})
        for user in (VICTIM, *OTHERS)
        for days_ago in (1, 2, 3)
        for n in range(2)
    ]
    events.append(client.event(user_id=VICTIM, privacy_level="pii", timestamp=day(1)))
    events.append(client.event(user_id=OTHERS[0], privacy_level="pii", timestamp=day(1)))
    events.append({**client.event(user_id=VICTIM), "timestamp": "not a time"})  # rejected, raw names them
    status, answer = await client.post_batch(events)
    assert status == 200 and answer["totals"]["accepted"] == len(events) - 1, answer
    async with client.gateway.session.put(
        f"{client.gateway.url}/v1/consent/{VICTIM}", headers=client.headers, json={"categories": {"user_interaction": True}}
    ) as response:
        assert response.status == 200


async def _keep_posting(client: Client, statuses: list[tuple[str, str]], stop: asyncio.Event) -> None:
    """The victim's app and another user's keep sending while the erasure runs."""
    while not stop.is_set():
        batch = [client.event(user_id=VICTIM, timestamp=day(1, seconds=30)), client.event(user_id=OTHERS[1], timestamp=day(1, seconds=40))]
        status, answer = await client.post_batch(batch)
        assert status == 200, answer
        statuses.extend((event["user_id"], result["status"]) for event, result in zip(batch, answer["results"], strict=True))
        await asyncio.sleep(0.05)


async def test_an_erased_user_is_gone_everywhere_while_their_events_keep_arriving(
    gateway: Gateway, settings: Settings, store: ClickHouseStore, client: Client, bootstrap: str
) -> None:
    org = client.organization_id
    admin = bearer(settings, org)
    alias = alias_of(settings, org, VICTIM)
    await _seed(client, settings)
    await eventually(lambda: rows_naming(store, org, (VICTIM, alias)), lambda found: {
        "events.user_id", "domain_facts.user_id", "learner_activity_daily.user_id", "consent_records.user_id",
        "enrollments.user_id", "assessment_attempts.user_id", "rejected_events.raw", "learners.user_id",
    } <= set(found), timeout=60)  # fmt: skip
    # Someone looked at the victim's data: on record, about them.
    assert (await call(gateway, "GET", f"/api/v1/users/{VICTIM}/analytics", admin))[0] == 200
    # Reports made before the erasure: the organization's (may hold them) and another student's own.
    student = bearer(settings, org, "student", OTHERS[0])
    reports = {}
    for name, headers, report_type in (("admin", admin, "learner-activity"), ("student", student, "learner-transcript")):
        status, report = await call(gateway, "POST", "/api/v1/report-jobs", headers, json={"reportType": report_type, "name": name})
        assert status == 202, report
        reports[name] = await eventually(
            lambda r=report, h=headers: call(gateway, "GET", f"/api/v1/report-jobs/{r['id']}", h), lambda a: a[1]["status"] == "completed", timeout=60
        )

    statuses: list[tuple[str, str]] = []
    stop = asyncio.Event()
    poster = asyncio.create_task(_keep_posting(client, statuses, stop))
    try:
        await eventually(lambda: asyncio.sleep(0, len(statuses)), lambda n: n >= 4)
        status, job = await call(gateway, "POST", f"/api/v1/users/{VICTIM}/erasure", admin)
        assert status == 202 and job["status"] == "queued" and "userId" not in job, job
        done = await eventually(
            lambda: call(gateway, "GET", f"/api/v1/erasures/{job['id']}", admin), lambda a: a[1]["status"] in ("completed", "failed"), timeout=60
        )
        posted_before_completion = len(statuses)
        await eventually(lambda: asyncio.sleep(0, len(statuses)), lambda n: n >= posted_before_completion + 6)
    finally:
        stop.set()
        await poster
    status, job = done
    assert job["status"] == "completed", job
    assert job["stepsDone"] == job["stepsTotal"] and job["percentage"] == 100
    assert job["counts"]["rows"]["events"] >= 7 and job["counts"]["activity_daily"]["verified"] is True, job

    # The organization's report expired (its file gone); the other student's own did not.
    async with gateway.session.get(f"{gateway.url}/api/v1/report-jobs/{reports['admin'][1]['id']}/download", headers=admin) as response:
        assert response.status == 410
    async with gateway.session.get(f"{gateway.url}/api/v1/report-jobs/{reports['student'][1]['id']}/download", headers=student) as response:
        assert response.status == 200
    assert job["counts"]["reports_expired"] == 1

    # Later events of theirs are `erased` at the gateway; the others' still accepted.
    late = statuses[posted_before_completion:]
    assert {status for user, status in late if user == VICTIM} == {"erased"}
    assert {status for user, status in late if user != VICTIM} == {"accepted"}
    # Their domain events are `erased` too, and nothing about them is recorded again.
    status, answer = await client.post("/v1/domain-events", [
        {"eventType": "UserEnrolled", "userId": VICTIM, "courseId": COURSE}, {"eventType": "UserEnrolled", "userId": OTHERS[0], "courseId": "c_2"},
    ])  # fmt: skip
    assert status == 200 and [r["status"] for r in answer["results"]] == ["erased", "accepted"], answer
    assert answer["totals"] == {"accepted": 1, "rejected": 0, "erased": 1}
    status, answer = await client.post_batch([{**client.event(user_id=VICTIM), "timestamp": "not a time"}])
    assert [r["status"] for r in answer["results"]] == ["erased"]  # not kept as a bad row either: its raw names them
    async with gateway.session.put(f"{gateway.url}/v1/consent/{VICTIM}", headers=client.headers, json={"categories": {}}) as response:
        assert response.status == 410 and (await response.json())["field"] == "user_id"
    # One already in Kafka (the gateway accepted it before the erasure): the stream drops and counts it.
    await produce_events(bootstrap, [accepted(client.event(user_id=VICTIM, timestamp=day(2))), accepted(client.event(user_id=alias, timestamp=day(2)))])
    dropped = await eventually(
        lambda: store.query(
            "SELECT sum(events) AS n FROM intake_outcomes FINAL WHERE organization_id = {org:String} AND status = 'erased' AND key_id = 'stream'",
            {"org": org},
        ),
        lambda rows: int(rows[0]["n"] or 0) >= 2,
    )
    assert int(dropped[0]["n"]) >= 2
    answered = sum(1 for user, status in statuses if user == VICTIM and status == "erased") + 1  # and the invalid one
    await eventually(
        lambda: store.query(
            "SELECT sum(events) AS n FROM intake_outcomes FINAL WHERE organization_id = {org:String} AND status = 'erased' AND key_id != 'stream'",
            {"org": org},
        ),
        lambda rows: int(rows[0]["n"] or 0) == answered,
    )

    # Once the stream has loaded everything the others sent, nothing of the victim is anywhere.
    others_sent = len(OTHERS) * 6 + 1 + sum(1 for user, status in statuses if user != VICTIM)
    stored = await eventually(lambda: stored_events(store, org), lambda users: sum(users.values()) >= others_sent, timeout=60)
    assert VICTIM not in stored and alias not in stored
    assert stored[OTHERS[0]] == 6 and stored[alias_of(settings, org, OTHERS[0])] == 1  # untouched, pii row too
    assert await rows_naming(store, org, (VICTIM, alias)) == {}
    assert await store.query(
        "SELECT 1 FROM reference_entities_by_organization WHERE organization_id = {org:String} AND entity_id LIKE {p:String}", {"org": org, "p": f"{VICTIM}%"}
    ) == []
    assert await activity(store, org, recomputed=False) == await activity(store, org, recomputed=True)
    assert (await call(gateway, "GET", f"/api/v1/users/{OTHERS[0]}/analytics", admin))[0] == 200
    assert (await call(gateway, "GET", f"/api/v1/users/{VICTIM}/analytics", admin))[0] == 404

    # Audited, without the person: who erased, when, the counts; the earlier look names an erasure instead.
    trail = await eventually(
        lambda: call(gateway, "GET", "/api/v1/audit", admin, params={"limit": "100"}),
        lambda a: any(item["action"] == "erasure.completed" for item in a[1]["items"]),
    )
    completed = next(item for item in trail[1]["items"] if item["action"] == "erasure.completed")
    assert completed["actor"] == "admin" and completed["subjectUserId"] is None and completed["detail"]["rows"]["events"] >= 7
    assert any(item["subjectUserId"] == f"erased:{job['id']}" for item in trail[1]["items"])
    assert VICTIM not in str(trail[1]) and alias not in str(trail[1])


async def test_only_administrators_erase_and_see_erasures_of_their_organization(gateway: Gateway, settings: Settings, client: Client) -> None:
    org = client.organization_id
    for role in ("teacher-admin", "teacher", "student"):
        status, answer = await call(gateway, "POST", "/api/v1/users/u_x/erasure", bearer(settings, org, role, "u_x"))
        assert status == 403, (role, answer)
    status, job = await call(gateway, "POST", "/api/v1/users/u_x/erasure", bearer(settings, None, "system-admin"), params={"organizationId": org})
    assert status == 202 and job["organizationId"] == org
    other_admin = bearer(settings, "org_someone_else")
    assert (await call(gateway, "GET", f"/api/v1/erasures/{job['id']}", other_admin))[0] == 404
    status, answer = await call(gateway, "GET", f"/api/v1/erasures/{job['id']}", bearer(settings, org))
    assert status == 200 and answer["id"] == job["id"]
    status, answer = await call(gateway, "POST", "/api/v1/users/u%01x/erasure", bearer(settings, org))
    assert status == 400 and answer["field"] == "userId"
    # A system-admin names the organization.
    status, answer = await call(gateway, "POST", "/api/v1/users/u_x/erasure", bearer(settings, None, "system-admin"))
    assert status == 400 and answer["field"] == "organizationId"
    finished = await eventually(lambda: call(gateway, "GET", f"/api/v1/erasures/{job['id']}", bearer(settings, org)), lambda a: a[1]["status"] != "queued" and a[1]["status"] != "running")
    assert finished[1]["status"] == "completed" and finished[1]["counts"]["rows"] == {}  # nobody by that id: nothing removed



async def test_a_redis_that_lost_the_tombstones_gets_them_back_and_the_stream_drops_meanwhile(
    gateway: Gateway, settings: Settings, store: ClickHouseStore, client: Client
) -> None:
    org, admin = client.organization_id, bearer(settings, client.organization_id)
    status, job = await call(gateway, "POST", "/api/v1/users/u_lost/erasure", admin)
    assert status == 202
    await eventually(lambda: call(gateway, "GET", f"/api/v1/erasures/{job['id']}", admin), lambda a: a[1]["status"] == "completed")
    redis = gateway.app[REDIS]
    digester = Digester(pii_secret(settings.pii_secret, settings.data_dir))
    keys = [redis_key(org, digester.digest(org, user)) for user in ("u_lost", alias_of(settings, org, "u_lost"))]
    assert await redis.execute("DEL", *keys) == 2  # as a Redis restarted without its data
    late = client.event(user_id="u_lost")
    status, answer = await client.post_batch([late])
    assert answer["results"][0]["status"] == "accepted"  # the gateway cannot tell any more ...
    await eventually(  # ... the stream can: dropped, counted, not stored
        lambda: store.query(
            "SELECT sum(events) AS n FROM intake_outcomes FINAL WHERE organization_id = {org:String} AND status = 'erased' AND key_id = 'stream'",
            {"org": org},
        ),
        lambda rows: int(rows[0]["n"] or 0) == 1,
    )
    assert await stored_events(store, org) == {}
    assert await reload_tombstones(store, redis) >= 2  # what a gateway does at start
    # `erased` wins over every other status: a repeat (duplicate), an invalid one (rejected), a new one.
    batch = [late, {**client.event(user_id="u_lost"), "timestamp": "never"}, client.event(user_id="u_lost"), client.event(user_id="u_kept")]
    status, answer = await client.post_batch(batch)
    assert [r["status"] for r in answer["results"]] == ["erased", "erased", "erased", "accepted"], answer
    assert answer["totals"]["erased"] == 3 and "errors" not in answer["results"][1]
