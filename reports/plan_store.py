"""Versioned documents in ClickHouse: report templates and schedules
(sql/0032_report_templates_schedules.sql).

Each change appends the whole document (`body`, the model as JSON) with
the columns queries use, at a new version (this writer's clock in
microseconds: last writer wins). Readers take the latest row per key
(`ORDER BY version DESC LIMIT 1 BY`), then drop deleted ones, then
apply visibility: a deleted or changed document is never read in an
older state, whether or not ClickHouse merged its parts yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from analytics.params import decode_cursor, encode_cursor
from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import NotFound
from reports.visibility import readable

TIME = pa.timestamp("ms", tz="UTC")


def version_now() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


class Documents:
    """One table of documents keyed by (organization_id, `key`)."""

    def __init__(self, store: ClickHouseStore, table: str, key: str, columns: dict[str, pa.DataType]) -> None:
        self.store = store
        self.table = table
        self.key = key
        self.schema = pa.schema([pa.field(name, kind) for name, kind in columns.items()])

    async def put(self, row: dict[str, Any]) -> int:
        """Append `row` (every column but version) at a new version; returns the version."""
        version = version_now()
        table = pa.Table.from_pylist([{**row, "version": version}], schema=self.schema)
        await self.store.insert_arrow(self.table, table, dedup_token=f"{row[self.key]}:{version}")
        return version

    async def latest(self, where: str, params: dict[str, Any], tail: str = "") -> list[dict[str, Any]]:
        """Current, undeleted rows among those matching `where`; `tail` filters and orders them."""
        return await self.store.query(
            f"""SELECT * FROM (SELECT * FROM {self.table} WHERE {where}
                               ORDER BY version DESC LIMIT 1 BY organization_id, {self.key})
                WHERE deleted = 0 {tail}""",
            params,
        )

    async def visible(self, scope: Scope, key: str, what: str) -> dict[str, Any]:
        """The current row of `key` if the caller may read it (reports/visibility.py, owner_id as the
        owner); else NotFound, so existence outside the caller's view does not leak."""
        rows = await self.latest(
            f"{scope.organizations()} AND {self.key} = {{doc_key:String}}",
            {**scope.params, "doc_key": key},
            f"AND {readable(scope, owner='owner_id')}",
        )
        if not rows:
            raise NotFound(f"no {what} with this id in your scope", field="id")
        return rows[0]

    async def page(
        self, where: str, params: dict[str, Any], tail: str, limit: int, cursor: str | None
    ) -> Page:
        """Rows by (name, key), `limit` at a time; the cursor is the last row's (name, key)."""
        params = {**params, "page_limit": limit + 1}
        after = decode_cursor({"cursor": cursor} if cursor else {}, 2)
        if after is not None:
            params["after_name"], params["after_key"] = after
            tail += f" AND (name, {self.key}) > ({{after_name:String}}, {{after_key:String}})"
        rows = await self.latest(where, params, f"{tail} ORDER BY name, {self.key} LIMIT {{page_limit:UInt32}}")
        next_cursor = encode_cursor([rows[limit - 1]["name"], rows[limit - 1][self.key]]) if len(rows) > limit else None
        return Page(rows[:limit], next_cursor)
