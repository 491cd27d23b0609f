"""Export of everything stored about one person (privacy/export.py): the
archive holds every row the store has about them, found as the erasure
finds them (user columns from system.columns, and the tables naming
them elsewhere), and nothing of anyone else."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

import orjson
import pytest_asyncio

from lms_events.clickhouse import ClickHouseStore
from lms_events.personal_data import NAMED_ELSEWHERE, sources
from lms_events.settings import Settings
from tests.support import Client, Gateway, eventually
from tests.test_erasure import alias_of, bearer, call, day
from tests.test_openapi import assert_documented, fetch

ME, OTHER = "u_exported", "u_someone_else"


async def _seed(client: Client) -> None:
    domain = [{"eventType": "CourseCreated", "courseId": "c_x", "contents": [{"contentId": "G-01542", "moduleId": "m1"}]}]
    for user in (ME, OTHER):
        domain += [
            {"eventType": "UserCreated", "userId": user, "departmentId": "d1"},
            {"eventType": "UserEnrolled", "userId": user, "courseId": "c_x"},
        ]
    status, answer = await client.post("/v1/domain-events", domain)
    assert status == 200 and answer["totals"]["rejected"] == 0, answer
    events = [client.event(user_id=user, timestamp=day(n)) for user in (ME, OTHER) for n in (1, 2)]
    events += [
        client.event(user_id=ME, privacy_level="pii", timestamp=day(1)),
        client.event(user_id=ME, event_type="page_load_time", properties={"page": "/x", "load_time_ms": 120}, timestamp=day(1)),
        {**client.event(user_id=ME), "timestamp": "not a time"},
    ]
    status, answer = await client.post_batch(events)
    assert status == 200 and answer["totals"]["rejected"] == 1, answer
    async with client.gateway.session.put(f"{client.gateway.url}/v1/consent/{ME}", headers=client.headers, json={"categories": {}}) as response:
        assert response.status == 200


async def _expected(store: ClickHouseStore, organization_id: str, ids: dict[str, str]) -> dict[str, int]:
    """Rows per table about the person, counted as queries see them (FINAL where rows collapse)."""
    counts = {}
    for source in await sources(store):
        final = " FINAL" if source.collapsing else ""
        rows = await store.query(f"SELECT count() AS n FROM {source.table}{final} WHERE {source.condition}", ids)
        counts[source.table] = int(rows[0]["n"])
    return counts


async def _download(gateway: Gateway, headers: dict[str, str], url: str) -> tuple[int, bytes]:
    async with gateway.session.get(f"{gateway.url}{url}", headers=headers) as response:
        return response.status, await response.read()


async def test_a_learner_exports_everything_stored_about_them_and_nothing_else(
    gateway: Gateway, settings: Settings, store: ClickHouseStore, client: Client
) -> None:
    org = client.organization_id
    alias = alias_of(settings, org, ME)
    ids = {"org": org, "id": ME, "alias": alias}
    await _seed(client)
    expected = await eventually(
        lambda: _expected(store, org, ids),
        lambda c: c.get("events", 0) == 2 + 1 and c.get("perf_events") == 1 and c.get("rejected_events") == 1
        and c.get("consent_records") == 1 and c.get("learner_activity_daily", 0) >= 2 and c.get("enrollments") == 1,
        timeout=60,
    )  # fmt: skip
    admin = bearer(settings, org)
    assert (await call(gateway, "GET", f"/api/v1/users/{ME}/analytics", admin))[0] == 200  # an audit row about them
    await eventually(lambda: _expected(store, org, ids), lambda c: c.get("audit_log", 0) >= 1)

    me = bearer(settings, org, "student", ME)
    status, job = await call(gateway, "POST", "/api/v1/me/data-export", me)
    assert status == 202 and job["userId"] == ME and job["downloadUrl"] is None, job
    status, job = await eventually(
        lambda: call(gateway, "GET", f"/api/v1/data-exports/{job['id']}", me), lambda a: a[1]["status"] in ("completed", "failed"), timeout=60
    )
    assert job["status"] == "completed" and job["fileSize"] > 0, job
    status, body = await _download(gateway, me, job["downloadUrl"])
    assert status == 200
    archive = zipfile.ZipFile(io.BytesIO(body))
    names = set(archive.namelist())
    expected = await _expected(store, org, ids)  # the audit rows of the export itself are in it too
    assert {f"{table}.jsonl" for table in expected} | {"events.csv", "README.md"} == names
    for table, count in expected.items():
        if table in ("audit_log", "privacy_jobs"):  # written about this export after its archive: at least as many
            continue
        lines = archive.read(f"{table}.jsonl").splitlines()
        assert len(lines) == count, (table, count, len(lines))
        for line in lines:
            row = orjson.loads(line)
            if "user_id" in row:
                assert row["user_id"] in (ME, alias), (table, row)
    with_columns = orjson.loads(archive.read("learner_activity_daily.jsonl").splitlines()[0])
    assert with_columns["events"] >= 1 and with_columns["organization_id"] == org
    assert orjson.loads(archive.read("enrollments.jsonl"))["course_id"] == "c_x"
    events = list(csv.DictReader(io.StringIO(archive.read("events.csv").decode())))
    assert len(events) == expected["events"] + expected["perf_events"] + expected.get("bi_events", 0)
    assert {row["stored_in"] for row in events} == {"events", "perf_events"} and {row["user_id"] for row in events} == {ME, alias}
    readme = archive.read("README.md").decode()
    assert "events.csv" in readme and "domain_facts.jsonl" in readme and ME in readme
    assert OTHER.encode() not in body and OTHER not in str([archive.read(name) for name in names])

    # Audited: requested and downloaded, about them.
    trail = await eventually(
        lambda: call(gateway, "GET", "/api/v1/audit", admin, params={"userId": ME, "limit": "50"}),
        lambda a: {"export.requested", "export.download"} <= {item["action"] for item in a[1]["items"]},
    )
    assert all(item["subjectUserId"] == ME for item in trail[1]["items"])


async def test_an_administrator_exports_a_user_others_may_not(gateway: Gateway, settings: Settings, client: Client) -> None:
    org = client.organization_id
    for role in ("teacher", "student", "teacher-admin"):
        assert (await call(gateway, "POST", f"/api/v1/users/{ME}/data-export", bearer(settings, org, role, "x")))[0] == 403
    status, job = await call(gateway, "POST", f"/api/v1/users/{ME}/data-export", bearer(settings, org))
    assert status == 202 and job["userId"] == ME and job["requestedBy"] == "admin"
    # The person it is about sees it; another learner does not, nor another organization's admin.
    assert (await call(gateway, "GET", f"/api/v1/data-exports/{job['id']}", bearer(settings, org, "student", ME)))[0] == 200
    assert (await call(gateway, "GET", f"/api/v1/data-exports/{job['id']}", bearer(settings, org, "student", OTHER)))[0] == 404
    assert (await call(gateway, "GET", f"/api/v1/data-exports/{job['id']}", bearer(settings, "org_elsewhere")))[0] == 404
    done = await eventually(
        lambda: call(gateway, "GET", f"/api/v1/data-exports/{job['id']}", bearer(settings, org)), lambda a: a[1]["status"] == "completed", timeout=60
    )
    assert done[1]["counts"]["events.csv"] == 0  # nothing stored about them in this organization
    status, answer = await call(gateway, "GET", "/api/v1/data-exports/nope/download", bearer(settings, org))
    assert status == 404 and answer["field"] == "exportId"


async def test_an_erasure_removes_the_persons_export_archives(gateway: Gateway, settings: Settings, client: Client) -> None:
    org = client.organization_id
    me = bearer(settings, org, "student", ME)
    status, job = await call(gateway, "POST", "/api/v1/me/data-export", me)
    assert status == 202
    done = await eventually(lambda: call(gateway, "GET", f"/api/v1/data-exports/{job['id']}", me), lambda a: a[1]["status"] == "completed", timeout=60)
    assert (await _download(gateway, me, done[1]["downloadUrl"]))[0] == 200
    status, erasure = await call(gateway, "POST", f"/api/v1/users/{ME}/erasure", bearer(settings, org))
    assert status == 202
    finished = await eventually(
        lambda: call(gateway, "GET", f"/api/v1/erasures/{erasure['id']}", bearer(settings, org)), lambda a: a[1]["status"] == "completed", timeout=60
    )
    assert finished[1]["counts"]["exports_removed"] == 1
    # The export job named them: it is gone with them.
    assert (await call(gateway, "GET", f"/api/v1/data-exports/{job['id']}", bearer(settings, org)))[0] == 404
    assert not (settings.data_dir / "exports" / org / f"{job['id']}.zip").exists()


@pytest_asyncio.fixture(scope="module")
async def spec(gateway: Gateway) -> dict[str, Any]:
    status, _, document = await fetch(gateway, "GET", "/openapi.json")
    assert status == 200
    return document  # type: ignore[no-any-return]


async def test_erasure_and_export_answers_are_documented(gateway: Gateway, settings: Settings, client: Client, spec: dict[str, Any]) -> None:
    org = client.organization_id
    admin = bearer(settings, org)
    answer = await fetch(gateway, "POST", f"/api/v1/users/{ME}/data-export", headers=admin)
    assert answer[0] == 202
    assert_documented(spec, "POST", "/api/v1/users/{userId}/data-export", answer)
    export_id = answer[2]["id"]
    answer = await fetch(gateway, "GET", f"/api/v1/data-exports/{export_id}/download", headers=admin)
    assert answer[0] in (409, 200)  # 409 until completed
    answer = await eventually(lambda: fetch(gateway, "GET", f"/api/v1/data-exports/{export_id}", headers=admin), lambda a: a[2]["status"] == "completed")
    assert_documented(spec, "GET", "/api/v1/data-exports/{exportId}", answer)
    answer = await fetch(gateway, "POST", "/api/v1/me/data-export", headers=bearer(settings, org, "student", ME))
    assert_documented(spec, "POST", "/api/v1/me/data-export", answer)
    answer = await fetch(gateway, "POST", f"/api/v1/users/{ME}/erasure", headers=admin)
    assert answer[0] == 202
    assert_documented(spec, "POST", "/api/v1/users/{userId}/erasure", answer)
    erasure_id = answer[2]["id"]
    answer = await eventually(lambda: fetch(gateway, "GET", f"/api/v1/erasures/{erasure_id}", headers=admin), lambda a: a[2]["status"] == "completed")
    assert_documented(spec, "GET", "/api/v1/erasures/{erasureId}", answer)
    # Their archive went with them: the export job is gone (404), as documented.
    answer = await fetch(gateway, "GET", f"/api/v1/data-exports/{export_id}/download", headers=admin)
    assert answer[0] == 404
    assert_documented(spec, "GET", "/api/v1/data-exports/{exportId}/download", answer)
    answer = await fetch(gateway, "POST", f"/api/v1/users/{ME}/erasure", headers=bearer(settings, org, "teacher", "t"))
    assert answer[0] == 403
    assert_documented(spec, "POST", "/api/v1/users/{userId}/erasure", answer)
    async with client.gateway.session.put(f"{client.gateway.url}/v1/consent/{ME}", headers=client.headers, json={"categories": {}}) as response:
        answer = (response.status, response.content_type, await response.json())
    assert answer[0] == 410
    assert_documented(spec, "PUT", "/v1/consent/{user_id}", answer)


async def test_every_table_naming_people_elsewhere_exists_and_its_condition_runs(store: ClickHouseStore) -> None:
    """A renamed table or column in NAMED_ELSEWHERE would silently leave a person behind in both
    export and erasure: each must be a source, and its condition must run against the real schema."""
    found = {source.table: source for source in await sources(store)}
    assert set(NAMED_ELSEWHERE) <= set(found), set(NAMED_ELSEWHERE) - set(found)
    for table in NAMED_ELSEWHERE:
        rows = await store.query(
            f"SELECT count() AS n FROM {table} WHERE {found[table].condition}",
            {"org": "org-none", "id": "u_nobody", "alias": "p_nobody"},
        )
        assert int(rows[0]["n"]) == 0, table
