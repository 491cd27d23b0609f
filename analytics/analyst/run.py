"""Run a checked query in the format asked for; engine errors become 4xx answers.

A limit the engine enforced (time, result rows, memory) is 422 with `field`
naming it; any other error ClickHouse raises for a query that passed the
guard (an unknown column, a type mismatch) is the client's query: 400 with
ClickHouse's sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from analytics.analyst.guard import Checked, Limits, engine_message
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import BadRequest, LimitExceeded, StorageError


@dataclass(frozen=True)
class Format:
    clickhouse: str
    content_type: str
    extension: str


FORMATS = {
    "json": Format("JSON", "application/json", "json"),
    "csv": Format("CSVWithNames", "text/csv", "csv"),
    "parquet": Format("Parquet", "application/vnd.apache.parquet", "parquet"),
    "arrow": Format("ArrowStream", "application/vnd.apache.arrow.stream", "arrow"),
}
_BINARY = "application/octet-stream"
# Output formats the ClickHouse HTTP interface serves, by ClickHouse's name (clients append `FORMAT X`).
HTTP_FORMATS = {
    fmt.clickhouse: fmt
    for fmt in (
        *FORMATS.values(),
        Format("Native", _BINARY, "native"),
        Format("RowBinary", _BINARY, "bin"),
        Format("RowBinaryWithNamesAndTypes", _BINARY, "bin"),
        Format("Arrow", "application/vnd.apache.arrow.file", "arrow"),
        Format("CSV", "text/csv", "csv"),
        Format("JSONEachRow", "application/x-ndjson", "jsonl"),
        Format("JSONCompact", "application/json", "json"),
        Format("JSONCompactEachRow", "application/x-ndjson", "jsonl"),
        Format("TabSeparated", "text/tab-separated-values", "tsv"),
        Format("TSV", "text/tab-separated-values", "tsv"),
        Format("TabSeparatedWithNames", "text/tab-separated-values", "tsv"),
        Format("TSVWithNames", "text/tab-separated-values", "tsv"),
        Format("TabSeparatedWithNamesAndTypes", "text/tab-separated-values", "tsv"),
        Format("TSVWithNamesAndTypes", "text/tab-separated-values", "tsv"),
    )
}

_CODE = re.compile(r"Code: (\d+)\.")
# ClickHouse error code -> the setting that was exceeded.
_LIMIT_CODES = {159: "max_execution_time", 396: "max_result_rows", 241: "max_memory_usage"}


@dataclass(frozen=True)
class Answer:
    body: bytes
    rows: int | None


async def run(store: ClickHouseStore, checked: Checked, fmt: Format, limits: Limits) -> Answer:
    try:
        body, rows = await store.query_bytes(checked.sql, fmt.clickhouse, checked.params)
    except StorageError as exc:
        raise translated(str(exc), limits) from None
    return Answer(body, rows)


def translated(error: str, limits: Limits) -> BadRequest | LimitExceeded:
    match = _CODE.search(error)
    limit = _LIMIT_CODES.get(int(match.group(1))) if match else None
    if limit is None:
        return BadRequest(f"ClickHouse refused the query: {engine_message(error)}", field="sql")
    value = {
        "max_execution_time": f"{limits.max_execution_s:g} s",
        "max_result_rows": f"{limits.max_result_rows} rows",
        "max_memory_usage": f"{limits.max_memory_bytes} bytes",
    }[limit]
    return LimitExceeded(f"the query exceeded {limit} ({value})", field=limit)
