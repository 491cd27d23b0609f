"""The guard on the engine itself: what runs is what was checked, and the engine facts the design rests on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analytics.analyst.catalog import Catalog
from analytics.analyst.guard import Limits, guard, parse
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import StorageError
from tests.test_analyst_sql import CONFINED

LIMITS = Limits(10.0, 1000, 2**30)


def _inner(tree: dict[str, Any]) -> dict[str, Any]:
    """The checked query inside the guard's `SELECT * FROM (...) SETTINGS ...`."""
    select = tree["list_of_selects"]["children"][0]
    inner: dict[str, Any] = select["tables"]["children"][0]["table_expression"]["subquery"]["children"][0]
    return inner


@pytest.mark.parametrize(("sql", "some"), CONFINED, ids=[f"confined-{i}" for i in range(len(CONFINED))])
async def test_what_runs_is_what_was_checked(store: ClickHouseStore, sql: str, some: bool) -> None:
    text = sql.replace("{db}", store.database).replace("{other}", "org_b")
    params = {"o": "org_b"} if "{o:String}" in sql else {}
    catalog = await Catalog.load(store)
    checked = await guard(store, catalog, text, params, "org_a", LIMITS)
    printed = await parse(store, checked.sql)
    assert _inner(printed) == await parse(store, text)
    settings = {change["name"]: change["value"]["value"] for change in printed["list_of_selects"]["children"][0]["settings"]["changes"]}
    assert settings["readonly"] == 1 and settings["max_result_rows"] == 1000
    filters = {table["value"]: condition["value"] for table, condition in (pair["value"] for pair in settings["additional_table_filters"])}
    assert filters[f"{store.database}.events"] == "organization_id = 'org_a'"


async def test_an_organization_id_cannot_break_out_of_its_filter(store: ClickHouseStore) -> None:
    catalog = await Catalog.load(store)
    checked = await guard(store, catalog, "SELECT count() AS n FROM events", {}, "x' OR 1 = 1 OR '", LIMITS)
    assert await store.query(checked.sql) == [{"n": 0}]


async def test_what_readonly_does_to_an_inner_settings_clause(store: ClickHouseStore) -> None:
    """Measured: without readonly, a SETTINGS clause inside the query overrides the outer
    additional_table_filters; with readonly = 1 it is silently ignored. The guard refuses
    SETTINGS anywhere in the text, and runs with readonly = 1 as well."""
    await store.execute(
        "INSERT INTO events (event_id, organization_id, timestamp, received_at, retention_days, _version) "
        "VALUES ('guard-1', 'org_guard', '2001-02-03 04:05:06', '2001-02-03 04:05:06', 36500, 1)"
    )
    inner = "SELECT * FROM events SETTINGS additional_table_filters = {'events': '1'}"
    outer = f"SETTINGS additional_table_filters = {{'{store.database}.events': '0'}}"
    overridden = await store.query(f"SELECT count() AS n FROM ({inner}) {outer}")
    ignored = await store.query(f"SELECT count() AS n FROM ({inner}) {outer}, readonly = 1")
    assert int(overridden[0]["n"]) > 0 and int(ignored[0]["n"]) == 0


async def test_why_functions_are_an_allow_list(store: ClickHouseStore, tmp_path: Path) -> None:
    """Measured: readonly = 1 refuses the file() table function but not the scalar file()."""
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t")
    with pytest.raises(StorageError, match="readonly"):
        await store.query(f"SELECT * FROM file('{secret}', 'LineAsString') SETTINGS readonly = 1")
    assert await store.query(f"SELECT file('{secret}') AS f SETTINGS readonly = 1") == [{"f": "s3cr3t"}]
    catalog = await Catalog.load(store)
    for name in ("file", "dictGet", "joinGet", "getSetting", "hasColumnInTable", "sleep", "AIGenerate", "naiveBayesClassifier", "currentUser"):
        assert not catalog.allows_function(name), name
    for name in ("count", "countIf", "argMaxMerge", "uniqExactMerge", "SUM", "quantile", "toStartOfWeek", "JSONExtractString", "lambda"):
        assert catalog.allows_function(name), name


async def test_a_query_failing_mid_answer_leaves_the_next_answer_clean(store: ClickHouseStore) -> None:
    """chDB 4.4 prepends what a failed query had written to the next result; the driver flushes it."""
    for fmt in ("JSON", "Parquet", "ArrowStream", "CSVWithNames"):
        with pytest.raises(StorageError, match="max rows"):
            await store.query_bytes(
                "SELECT * FROM (SELECT arrayJoin(range(100)) AS a) SETTINGS max_result_rows = 10, result_overflow_mode = 'throw'", fmt
            )
        assert await store.query("SELECT 1 AS a") == [{"a": 1}], fmt
