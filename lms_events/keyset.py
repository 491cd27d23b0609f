"""Reading a whole table page by page, by its (organization_id, <key>) order:
how a restarted Redis is given back what ClickHouse keeps durably (consent
records, erasure tombstones)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from lms_events.clickhouse import ClickHouseStore

PAGE = 10_000


async def pages(store: ClickHouseStore, columns: str, table: str, key: str, page: int = PAGE) -> AsyncIterator[list[dict[str, Any]]]:
    """Rows of `table FINAL` (`columns`, which include organization_id and `key`), in pages."""
    last = ("", "")
    while True:
        rows = await store.query(
            f"SELECT {columns} FROM {table} FINAL WHERE (organization_id, {key}) > ({{org:String}}, {{key:String}}) "
            f"ORDER BY organization_id, {key} LIMIT {{page:UInt32}}",
            {"org": last[0], "key": last[1], "page": page},
        )
        if not rows:
            return
        yield rows
        last = (rows[-1]["organization_id"], rows[-1][key])
