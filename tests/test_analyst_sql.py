"""Analyst SQL (POST /api/v1/query): the attack table, limits, audit, formats, the dictionary.

Two organizations' rows are loaded through `event_loads` (so `events` and
the rollups have them) and `domain_facts`, dated 2001 and as facts no figure
counts (AssessmentStarted), so the analytics tests' all-organization
answers sharing this store do not see them; every query of the attack table
runs as the first organization's subscriber-admin and is either refused
(4xx naming the field) or answers rows of that organization only.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import orjson
import pyarrow.ipc
import pyarrow.parquet
import pytest
import pytest_asyncio

from analytics.analyst.catalog import ANALYST_TABLES
from lms_events import tokens
from lms_events.clickhouse import ClickHouseStore
from lms_events.secret_files import load_or_create_secret
from lms_events.settings import Settings
from tests.support import Client, Gateway, eventually, start_gateway, unique_org

OWN_EVENTS, OTHER_EVENTS = 3, 5
LONG_AGO = "2001-02-03 04:05:06.000"


@dataclass(frozen=True)
class Orgs:
    own: str
    other: str


def token(settings: Settings, org: str | None, role: str = "subscriber-admin") -> str:
    secret = load_or_create_secret(settings.jwt_secret, settings.data_dir, tokens.SECRET_FILE)
    return tokens.mint(secret, sub="analyst-1", role=role, organization_id=org)


async def load(store: ClickHouseStore, org: str, events: int) -> None:
    await store.execute(
        "INSERT INTO event_loads (event_id, event_type, event_category, timestamp, received_at, organization_id, "
        "user_id, course_id, retention_days, _version, _sign) "
        "SELECT concat({org:String}, '-', toString(number)), 'game_stage_complete', 'learning_progress', "
        "{at:DateTime64(3)}, {at:DateTime64(3)}, {org:String}, concat('u', toString(number)), 'c1', 36500, 1, 1 "
        "FROM numbers({n:UInt32})",
        {"org": org, "n": str(events), "at": LONG_AGO},
    )
    await store.execute(
        "INSERT INTO domain_facts (organization_id, event_type, fact_id, occurred_at, user_id, course_id, _version) "
        "SELECT {org:String}, 'AssessmentStarted', concat({org:String}, '-f', toString(number)), {at:DateTime64(3)}, "
        "concat('u', toString(number)), 'c1', 1 FROM numbers({n:UInt32})",
        {"org": org, "n": str(events), "at": LONG_AGO},
    )


@pytest_asyncio.fixture(scope="module")
async def orgs(store: ClickHouseStore) -> Orgs:
    own, other = unique_org(), unique_org()
    await load(store, own, OWN_EVENTS)
    await load(store, other, OTHER_EVENTS)
    return Orgs(own, other)


@pytest_asyncio.fixture(scope="module")
async def tight(settings: Settings, store: ClickHouseStore, gateway: Gateway) -> AsyncIterator[Gateway]:
    """A second API on the same store with small limits, so each limit is reached in about a second."""
    limited = replace(
        settings, query_max_execution_s=1.0, query_max_result_rows=1000, query_max_memory_bytes=64 * 2**20, query_concurrency=1
    )
    runner, url = await start_gateway(limited, store)
    yield Gateway(url, gateway.session, runner.app)
    await runner.cleanup()


async def ask(
    gateway: Gateway, bearer: str, sql: str, params: dict[str, Any] | None = None, fmt: str = "json", **query: str
) -> tuple[int, bytes, dict[str, str]]:
    body: dict[str, Any] = {"sql": sql, "format": fmt}
    if params is not None:
        body["params"] = params
    async with gateway.session.post(
        f"{gateway.url}/api/v1/query", json=body, headers={"Authorization": f"Bearer {bearer}"}, params=query
    ) as response:
        return response.status, await response.read(), dict(response.headers)


def rows(body: bytes) -> list[dict[str, Any]]:
    return orjson.loads(body)["data"]  # type: ignore[no-any-return]


# (query, field the refusal names). {db} is the product's database.
REFUSED = [
    ("SELECT * FROM system.tables", "sql"),
    ("SELECT * FROM system.users", "sql"),
    ("SELECT name FROM `system`.`tables`", "sql"),
    ('SELECT name FROM "system"."tables"', "sql"),
    ("SeLeCt * FrOm System.Tables", "sql"),
    ("SELECT /* x */ * FROM system/**/.tables", "sql"),
    ("SELECT * FROM INFORMATION_SCHEMA.TABLES", "sql"),
    ("SELECT * FROM information_schema.columns", "sql"),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "sql"),
    ("SELECT file('/etc/hostname')", "sql"),
    ("SELECT * FROM url('http://127.0.0.1:9/x', 'CSV', 'a String')", "sql"),
    ("SELECT * FROM s3('http://127.0.0.1:9/b/k.csv', 'CSV', 'a String')", "sql"),
    ("SELECT * FROM remote('127.0.0.1', system.one)", "sql"),
    ("SELECT * FROM cluster('default', system.one)", "sql"),
    ("SELECT * FROM executable('id', 'TSV', 'a String')", "sql"),
    ("SELECT * FROM python(events)", "sql"),
    ("SELECT * FROM merge(currentDatabase(), '.*')", "sql"),
    ("SELECT * FROM merge('.*')", "sql"),
    ("SELECT * FROM input('a String')", "sql"),
    ("SELECT count() FROM numbers(1000000000000000)", "sql"),
    ("SELECT count() FROM system.numbers", "sql"),
    ("SELECT * FROM generateRandom('a String')", "sql"),
    ("SELECT * FROM view(SELECT * FROM write_keys)", "sql"),
    ("SELECT dictGet('some_dictionary', 'a', toUInt64(1))", "sql"),
    ("SELECT joinGet('some_join', 'a', 1)", "sql"),
    ("SELECT getSetting('additional_table_filters')", "sql"),
    ("SELECT hasColumnInTable('system', 'users', 'name')", "sql"),
    ("SELECT AIGenerate('say hello')", "sql"),
    ("SELECT sleep(3)", "sql"),
    ("SELECT * FROM events SETTINGS additional_table_filters = {'events': '1'}", "sql"),
    ("SELECT * FROM (SELECT * FROM events SETTINGS additional_table_filters = {'events': '1'})", "sql"),
    ("SELECT * FROM events SETTINGS readonly = 0", "sql"),
    ("SELECT 1; SELECT * FROM system.tables", "sql"),
    ("SELECT 1; DROP TABLE events", "sql"),
    ("SELECT * FROM events INTO OUTFILE '/tmp/analyst.csv'", "sql"),
    ("SELECT * FROM events FORMAT TSV", "sql"),
    ("DROP TABLE events", "sql"),
    ("TRUNCATE TABLE events", "sql"),
    ("INSERT INTO events (event_id) VALUES ('x')", "sql"),
    ("INSERT INTO events SELECT * FROM events", "sql"),
    ("CREATE TABLE stolen (a String) ENGINE = Memory", "sql"),
    ("ALTER TABLE events DELETE WHERE 1", "sql"),
    ("SET additional_table_filters = {}", "sql"),
    ("SHOW TABLES", "sql"),
    ("DESCRIBE TABLE write_keys", "sql"),
    ("EXPLAIN SELECT * FROM write_keys", "sql"),
    ("SYSTEM SHUTDOWN", "sql"),
    ("KILL QUERY WHERE 1", "sql"),
    ("OPTIMIZE TABLE events FINAL", "sql"),
    ("USE system", "sql"),
    ("SELECT * FROM write_keys", "sql"),
    ("SELECT * FROM consent_records", "sql"),
    ("SELECT * FROM schema_migrations", "sql"),
    ("SELECT * FROM {db}.write_keys", "sql"),
    ("SELECT 1 WHERE 'x' IN write_keys", "sql"),
    ("WITH write_keys AS (SELECT 1 AS a) SELECT * FROM write_keys", "sql"),
    ("SELECT * FROM (WITH x AS (SELECT 1) SELECT 1), rejected_events", "sql"),
    ("SELECT * FROM events AS e JOIN system.tables AS t ON 1", "sql"),
    ("SELECT 1 WHERE EXISTS (SELECT * FROM system.tables)", "sql"),
    ("WITH (SELECT count() FROM system.tables) AS n SELECT n", "sql"),
    ("SELECT arrayJoin((SELECT groupArray(name) FROM system.tables))", "sql"),
    ("SELECT * FROM {t:Identifier}", "sql"),
    ("WITH RECURSIVE t AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM t) SELECT count() FROM t", "sql"),
    ("SELECT 1 FROM events PARALLEL WITH SELECT * FROM write_keys", "sql"),
    ("SELECT * FROM remoteSecure('127.0.0.1', system.one)", "sql"),
    ("SELECT url('http://127.0.0.1:9/')", "sql"),
    ("SELECT throwIf(1)", "sql"),
    ("SELECT * FROM events WHERE organization_id = currentUser()", "sql"),
    ("SELECT * FROM ｓｙｓｔｅｍ.tables", "sql"),
    ("", "sql"),
]


@pytest.mark.parametrize(("sql", "field"), REFUSED, ids=[f"refused-{i}" for i in range(len(REFUSED))])
async def test_attack_is_refused(gateway: Gateway, settings: Settings, store: ClickHouseStore, orgs: Orgs, sql: str, field: str) -> None:
    status, body, _ = await ask(gateway, token(settings, orgs.own), sql.format(db=store.database) if "{db}" in sql else sql, {"t": "system.tables"} if "{t:" in sql else None)
    assert status in (400, 403), (status, body)
    answer = orjson.loads(body)
    assert answer["field"] == field and answer["error"], answer


# Queries that run but can only see the caller's rows: each answers one column `org`; (sql, any rows expected).
CONFINED = [
    ("SELECT organization_id AS org FROM events", True),
    ("SELECT organization_id AS org FROM {db}.events", True),
    ("SELECT organization_id AS org FROM events UNION ALL SELECT organization_id FROM events WHERE organization_id = '{other}'", True),
    ("SELECT org FROM (SELECT organization_id AS org FROM events WHERE organization_id != '')", True),
    ("SELECT a.organization_id AS org FROM events AS a JOIN domain_facts AS b ON a.user_id = b.user_id", True),
    ("SELECT b.organization_id AS org FROM events AS a RIGHT JOIN domain_facts AS b ON a.user_id = b.user_id", True),
    ("SELECT a.organization_id AS org FROM events AS a, domain_facts AS b", True),
    ("WITH others AS (SELECT * FROM events WHERE organization_id = '{other}') SELECT organization_id AS org FROM others", False),
    ("WITH events AS (SELECT * FROM domain_facts) SELECT organization_id AS org FROM events", True),
    ("SELECT organization_id AS org FROM events WHERE user_id IN (SELECT user_id FROM events WHERE organization_id = '{other}')", False),
    ("SELECT arrayJoin((SELECT groupArray(organization_id) FROM events)) AS org", True),
    ("SELECT arrayJoin(groupArray(organization_id)) AS org FROM domain_facts", True),
    ("SELECT organization_id AS org FROM events FINAL PREWHERE organization_id = '{other}' OR 1", True),
    ("SELECT DISTINCT organization_id AS org FROM activity_daily", True),
    ("SELECT DISTINCT organization_id AS org FROM learner_activity_daily", True),
    ("SELECT DISTINCT organization_id AS org FROM domain_facts FINAL", True),
    ("SELECT organization_id AS org FROM events WHERE organization_id = {o:String}", False),
    ("SELECT organization_id AS org FROM events -- WHERE organization_id = '{other}'\n UNION ALL SELECT organization_id FROM domain_facts /* ; DROP TABLE events */", True),
    ("SELECT organization_id AS org FROM events AS system", True),
    ("SELECT anyLast(organization_id) OVER () AS org FROM events", True),
    ("SELECT organization_id AS org FROM events INTERSECT SELECT organization_id FROM domain_facts", True),
    ("SELECT organization_id AS org FROM events LIMIT 1 BY user_id", True),
]


@pytest.mark.parametrize(("sql", "some"), CONFINED, ids=[f"confined-{i}" for i in range(len(CONFINED))])
async def test_attack_sees_only_own_rows(
    gateway: Gateway, settings: Settings, store: ClickHouseStore, orgs: Orgs, sql: str, some: bool
) -> None:
    text = sql.replace("{db}", store.database).replace("{other}", orgs.other)
    params = {"o": orgs.other} if "{o:String}" in sql else None
    status, body, _ = await ask(gateway, token(settings, orgs.own), text, params)
    assert status == 200, (status, body)
    assert {row["org"] for row in rows(body)} == ({orgs.own} if some else set()), body


async def test_parameters_are_bound_not_spliced(gateway: Gateway, settings: Settings, orgs: Orgs) -> None:
    bearer = token(settings, orgs.own)
    for value in ("x' OR 1 = 1 --", f"{orgs.other}' UNION ALL SELECT name FROM system.tables --", "\\'; DROP TABLE events; --"):
        status, body, _ = await ask(gateway, bearer, "SELECT count() AS n FROM events WHERE user_id = {u:String}", {"u": value})
        assert status == 200 and rows(body) == [{"n": 0}], body
    status, body, _ = await ask(gateway, bearer, "SELECT {u:String} AS v", {"u": "'; SELECT 1; --"})
    assert rows(body) == [{"v": "'; SELECT 1; --"}]
    status, body, _ = await ask(gateway, bearer, "SELECT count() AS n FROM events WHERE user_id IN {us:Array(String)}", {"us": ["u0", "u1'"]})
    assert status == 200 and rows(body) == [{"n": 1}], body
    status, body, _ = await ask(gateway, bearer, "SELECT 'a\\'; DROP TABLE events; --' AS s")
    assert status == 200 and rows(body) == [{"s": "a'; DROP TABLE events; --"}]


async def test_own_rows_are_all_there(gateway: Gateway, settings: Settings, orgs: Orgs) -> None:
    status, body, _ = await ask(gateway, token(settings, orgs.own), "SELECT count() AS n FROM events")
    assert status == 200 and rows(body) == [{"n": OWN_EVENTS}]


async def test_system_admin_names_an_organization_or_sees_all(gateway: Gateway, settings: Settings, orgs: Orgs) -> None:
    admin = token(settings, None, role="system-admin")
    sql = "SELECT organization_id AS org, count() AS n FROM events WHERE organization_id IN ({a:String}, {b:String}) GROUP BY org ORDER BY org"
    params = {"a": orgs.own, "b": orgs.other}
    status, body, _ = await ask(gateway, admin, sql, params, organizationId=orgs.other)
    assert status == 200 and rows(body) == [{"org": orgs.other, "n": OTHER_EVENTS}]
    status, body, _ = await ask(gateway, admin, sql, params)
    assert sorted(row["n"] for row in rows(body)) == [OWN_EVENTS, OTHER_EVENTS]
    status, body, _ = await ask(gateway, token(settings, orgs.own), sql, params, organizationId=orgs.other)
    assert status == 403


@pytest.mark.parametrize("role", ["teacher-admin", "teacher", "student"])
async def test_narrower_roles_are_403(gateway: Gateway, settings: Settings, orgs: Orgs, role: str) -> None:
    status, body, _ = await ask(gateway, token(settings, orgs.own, role=role), "SELECT 1")
    assert status == 403 and orjson.loads(body)["field"] == "role"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"format": "json"}, "sql"),
        ({"sql": "SELECT 1", "format": "xml"}, "format"),
        ({"sql": "SELECT 1", "extra": 1}, "body"),
        ({"sql": "SELECT 1", "params": {"p": 1}}, "params.p"),
        ({"sql": "SELECT {p:UInt8}"}, "params.p"),
        ({"sql": "SELECT {p:UInt8}", "params": {"p": "many"}}, "sql"),
        ({"sql": "SELECT {p:UInt8}", "params": {"p": {"a": 1}}}, "params"),
        ({"sql": "SELECT no_such_column FROM events"}, "sql"),
        ({"sql": "SELEC 1"}, "sql"),
    ],
)
async def test_bad_requests_name_the_field(gateway: Gateway, settings: Settings, orgs: Orgs, payload: dict[str, Any], field: str) -> None:
    async with gateway.session.post(
        f"{gateway.url}/api/v1/query", json=payload, headers={"Authorization": f"Bearer {token(settings, orgs.own)}"}
    ) as response:
        answer = await response.json()
        assert response.status == 400, answer
        assert answer["field"] == field or answer["field"].startswith(field), answer


async def test_limits_are_422_naming_the_limit_and_ingest_keeps_flowing(
    tight: Gateway, settings: Settings, orgs: Orgs, client: Client
) -> None:
    bearer = token(settings, orgs.own)
    cross_join = "SELECT count() FROM (SELECT arrayJoin(range(100000)) AS a) AS x CROSS JOIN (SELECT arrayJoin(range(100000)) AS b) AS y"
    slow = asyncio.ensure_future(ask(tight, bearer, cross_join))
    await asyncio.sleep(0)  # lets the slow query take the organization's only slot
    busy_status, busy_body, busy_headers = await ask(tight, bearer, "SELECT 1")
    # The gateway keeps accepting meanwhile (an old event: outside every window the analytics tests check).
    batch_status, _ = await client.post_batch([client.event(timestamp="2019-01-02T03:04:05.000Z")])
    status, body, _ = await slow
    assert status == 422 and orjson.loads(body)["field"] == "max_execution_time", body
    assert busy_status == 429 and orjson.loads(busy_body)["field"] == "query_concurrency" and busy_headers["Retry-After"]
    assert batch_status == 200
    for sql, limit in (
        ("SELECT arrayJoin(range(5000)) AS n", "max_result_rows"),
        ("SELECT length(groupArray(toString(n))) FROM (SELECT arrayJoin(range(20000000)) AS n)", "max_memory_usage"),
    ):
        status, body, _ = await ask(tight, bearer, sql)
        assert status == 422 and orjson.loads(body)["field"] == limit, body
    status, body, _ = await ask(tight, bearer, "SELECT count() AS n FROM events")
    assert status == 200 and rows(body) == [{"n": OWN_EVENTS}]


async def test_every_query_is_audited_for_its_organization(gateway: Gateway, settings: Settings, orgs: Orgs) -> None:
    own, other = token(settings, orgs.own), token(settings, orgs.other)
    _, _, headers = await ask(gateway, own, "SELECT user_id FROM events ORDER BY user_id")
    refused, _, _ = await ask(gateway, own, "SELECT * FROM system.tables")
    assert refused == 400
    _, body, _ = await ask(
        gateway, own, "SELECT query_id, sub, role, sql, status, result_rows, duration_ms FROM analyst_queries ORDER BY started_at"
    )
    audit = rows(body)
    ok = next(row for row in audit if row["query_id"] == headers["X-Query-Id"])
    assert ok["sub"] == "analyst-1" and ok["role"] == "subscriber-admin" and ok["status"] == "ok"
    assert ok["sql"] == "SELECT user_id FROM events ORDER BY user_id" and ok["result_rows"] == OWN_EVENTS
    assert any(row["status"] == "refused" and row["sql"] == "SELECT * FROM system.tables" for row in audit)
    _, body, _ = await ask(gateway, other, "SELECT count() AS n FROM analyst_queries WHERE query_id = {q:String}", {"q": headers["X-Query-Id"]})
    assert rows(body) == [{"n": 0}]
    # and the organization's audit trail (GET /api/v1/audit) has it, without the SQL
    trail = await eventually(
        lambda: _audit_rows(gateway, settings, orgs.own, f"analyst-query:{headers['X-Query-Id']}"), bool
    )
    assert [(row["action"], row["actor"], row["detail"]) for row in trail] == [("query.ok", "analyst-1", {"rows": OWN_EVENTS})]


async def _audit_rows(gateway: Gateway, settings: Settings, organization_id: str, target: str) -> list[dict[str, Any]]:
    admin = token(settings, organization_id)
    async with gateway.session.get(
        f"{gateway.url}/api/v1/audit", headers={"Authorization": f"Bearer {admin}"}, params={"action": "query.ok"}
    ) as response:
        assert response.status == 200
        return [row for row in (await response.json())["items"] if row["target"] == target]


async def test_formats_read_back_with_real_readers(gateway: Gateway, settings: Settings, orgs: Orgs) -> None:
    bearer = token(settings, orgs.own)
    sql = "SELECT user_id, count() AS events, toDate('2026-01-02') AS day FROM events GROUP BY user_id ORDER BY user_id"
    expected = [(f"u{i}", 1) for i in range(OWN_EVENTS)]
    status, body, headers = await ask(gateway, bearer, sql)
    answer = orjson.loads(body)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert [(m["name"], m["type"]) for m in answer["meta"]] == [("user_id", "String"), ("events", "UInt64"), ("day", "Date")]
    assert [(r["user_id"], r["events"]) for r in answer["data"]] == expected and headers["X-Result-Rows"] == str(OWN_EVENTS)
    _, body, headers = await ask(gateway, bearer, sql, fmt="csv")
    assert headers["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(body.decode())))
    assert table[0] == ["user_id", "events", "day"] and [(r[0], int(r[1])) for r in table[1:]] == expected
    _, body, _ = await ask(gateway, bearer, sql, fmt="parquet")
    parquet = pyarrow.parquet.read_table(io.BytesIO(body))
    assert list(zip(parquet["user_id"].to_pylist(), parquet["events"].to_pylist(), strict=True)) == expected
    _, body, headers = await ask(gateway, bearer, sql, fmt="arrow")
    assert headers["Content-Type"] == "application/vnd.apache.arrow.stream"
    arrow = pyarrow.ipc.open_stream(body).read_all()
    assert list(zip(arrow["user_id"].to_pylist(), arrow["events"].to_pylist(), strict=True)) == expected


async def test_the_dictionary_describes_every_column(gateway: Gateway, settings: Settings, orgs: Orgs) -> None:
    async with gateway.session.get(
        f"{gateway.url}/api/v1/query/schema", headers={"Authorization": f"Bearer {token(settings, orgs.own)}"}
    ) as response:
        assert response.status == 200
        answer = await response.json()
    tables = {table["name"]: table for table in answer["tables"]}
    assert set(tables) == set(ANALYST_TABLES)
    for table in tables.values():
        assert table["description"], table["name"]
        undocumented = [column["name"] for column in table["columns"] if not column["description"]]
        assert not undocumented, (table["name"], undocumented)
    assert {"organization_id", "event_type", "properties"} <= {c["name"] for c in tables["events"]["columns"]}
    assert answer["limits"]["maxResultRows"] == settings.query_max_result_rows
