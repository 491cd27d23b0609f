"""The ClickHouse HTTP interface (/clickhouse): real clients, the same rules as POST /api/v1/query."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import clickhouse_connect
import orjson
import pytest_asyncio
from clickhouse_connect.driver.asyncclient import AsyncClient
from clickhouse_connect.driver.exceptions import DatabaseError

from lms_events.clickhouse import ClickHouseStore
from lms_events.settings import Settings
from tests.support import Gateway, unique_org
from tests.test_analyst_sql import (
    OTHER_EVENTS,
    OWN_EVENTS,
    Orgs,
    ask,
    load,
    rows,
    token,
)

SQL = "SELECT organization_id, user_id, course_id FROM events WHERE user_id != {skip:String} ORDER BY user_id"


@pytest_asyncio.fixture(scope="module")
async def orgs(store: ClickHouseStore) -> Orgs:
    own, other = unique_org(), unique_org()
    await load(store, own, OWN_EVENTS)
    await load(store, other, OTHER_EVENTS)
    return Orgs(own, other)


@pytest_asyncio.fixture(scope="module")
async def analyst(gateway: Gateway, settings: Settings, orgs: Orgs) -> AsyncIterator[AsyncClient]:
    address = urlsplit(gateway.url)
    client = await clickhouse_connect.get_async_client(
        host=address.hostname, port=address.port, access_token=token(settings, orgs.own), proxy_path="clickhouse"
    )
    yield client
    await client.close()


async def test_clickhouse_connect_reads_own_rows_as_the_api_does(analyst: AsyncClient, gateway: Gateway, settings: Settings, orgs: Orgs) -> None:
    params = {"skip": "nobody"}
    _, body, _ = await ask(gateway, token(settings, orgs.own), SQL, params)
    expected = [tuple(row.values()) for row in rows(body)]
    assert len(expected) == OWN_EVENTS and {row[0] for row in expected} == {orgs.own}
    result = await analyst.query(SQL, parameters=params)
    assert result.column_names == ("organization_id", "user_id", "course_id")
    assert [tuple(row) for row in result.result_rows] == expected
    frame = await analyst.query_df(SQL, parameters=params)
    assert [tuple(row) for row in frame.itertuples(index=False)] == expected
    table = await analyst.query_arrow(SQL, parameters=params)
    assert list(zip(*(table[name].to_pylist() for name in table.column_names), strict=True)) == expected


async def test_clickhouse_connect_meets_the_same_guard(analyst: AsyncClient, orgs: Orgs) -> None:
    for sql in ("SELECT * FROM system.tables", "SELECT * FROM file('/etc/passwd', 'LineAsString')", "SELECT 1; DROP TABLE events"):
        try:
            await analyst.query(sql)
        except DatabaseError as exc:
            assert "Code: 36" in str(exc), exc
        else:
            raise AssertionError(f"ran: {sql}")
    # Settings a client sends are ignored: the engine's filter and readonly stay.
    result = await analyst.query(
        "SELECT DISTINCT organization_id FROM events",
        settings={"additional_table_filters": {"events": "1"}, "max_result_rows": 10**9},
    )
    assert result.result_rows == [(orgs.own,)]
    assert (await analyst.command("SELECT count() FROM domain_facts")) == OWN_EVENTS


async def test_a_parameter_reaching_the_text_stays_a_value(analyst: AsyncClient) -> None:
    value = "x' UNION ALL SELECT name FROM system.tables --\\"
    result = await analyst.query("SELECT {v:String} AS v, {vs:Array(String)} AS vs", parameters={"v": value, "vs": [value, "b"]})
    assert result.result_rows == [(value, [value, "b"])]


async def curl(gateway: Gateway, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "curl", "-s", "-w", "\\n%{http_code}", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    text, _, status = out.decode().rpartition("\n")
    return int(status), text


async def test_plain_curl(gateway: Gateway, settings: Settings, orgs: Orgs, store: ClickHouseStore) -> None:
    bearer = f"Authorization: Bearer {token(settings, orgs.own)}"
    status, text = await curl(gateway, "-H", bearer, f"{gateway.url}/clickhouse/?query=SELECT%20count()%20FROM%20events")
    assert (status, text) == (200, f"{OWN_EVENTS}\n")
    status, text = await curl(
        gateway, "-H", bearer, "--data-binary", "SELECT user_id FROM events ORDER BY user_id FORMAT JSONEachRow", f"{gateway.url}/clickhouse/"
    )
    assert status == 200 and [orjson.loads(line)["user_id"] for line in text.splitlines()] == [f"u{i}" for i in range(OWN_EVENTS)]
    status, text = await curl(gateway, "--data-binary", "SELECT 1", f"{gateway.url}/clickhouse/")
    assert status == 401 and text.startswith("Code: 516. DB::Exception:")
    status, text = await curl(
        gateway, "-u", f"analyst:{token(settings, orgs.own)}", "--data-binary", "SELECT name FROM system.tables", f"{gateway.url}/clickhouse/"
    )
    assert status == 400 and "system.tables" in text


async def test_settings_in_the_url_are_ignored(gateway: Gateway, settings: Settings, orgs: Orgs) -> None:
    bearer = f"Authorization: Bearer {token(settings, orgs.own)}"
    status, text = await curl(
        gateway,
        "-H",
        bearer,
        "--data-binary",
        "SELECT DISTINCT organization_id FROM events",
        f"{gateway.url}/clickhouse/?readonly=0&additional_table_filters=%7B%27events%27%3A%271%27%7D&database=system",
    )
    assert (status, text) == (200, f"{orgs.own}\n")

