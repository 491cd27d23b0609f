"""One `analyst_queries` row per query (sql/0024_analyst_sql.sql), refused ones included.

The row holds the SQL as sent: the organization's own audit, readable by
its subscriber-admin through analyst SQL. Logs carry only the query id,
status, sizes and times, never the SQL (its literals may be personal data).
The row is written before the answer is sent: no answer leaves unaudited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
import structlog

from lms_events.clickhouse import ClickHouseStore

log = structlog.get_logger(__name__)

_INSERT = """
INSERT INTO analyst_queries
SELECT {organization_id:String}, {query_id:String}, parseDateTime64BestEffort({started_at:String}, 3, 'UTC'),
       {sub:String}, {role:String}, {sql:String}, {params:String}, {format:String}, {status:String},
       {error:String}, {result_rows:UInt64}, {duration_ms:Float64}
"""


@dataclass(frozen=True)
class Entry:
    organization_id: str | None
    query_id: str
    started_at: datetime
    sub: str
    role: str
    sql: str
    params: object
    format: str
    status: str  # ok | refused | limit | failed
    error: str
    result_rows: int
    duration_ms: float


async def record(store: ClickHouseStore, entry: Entry) -> None:
    log.info(
        "analyst_query",
        query_id=entry.query_id,
        organization_id=entry.organization_id,
        role=entry.role,
        status=entry.status,
        rows=entry.result_rows,
        duration_ms=round(entry.duration_ms, 1),
    )
    await store.execute(
        _INSERT,
        {
            "organization_id": entry.organization_id or "",
            "query_id": entry.query_id,
            "started_at": entry.started_at.isoformat(),
            "sub": entry.sub,
            "role": entry.role,
            "sql": entry.sql,
            "params": orjson.dumps(entry.params).decode(),
            "format": entry.format,
            "status": entry.status,
            "error": entry.error,
            "result_rows": str(entry.result_rows),
            "duration_ms": str(entry.duration_ms),
        },
    )
