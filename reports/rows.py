"""A report's rows, from ClickHouse to the writer in bounded chunks.

The report's query runs once into a staging table numbered by row
(`report_rows_<job>`), then the rows are read back CHUNK_ROWS at a time by
row number. Why not a streaming cursor: chDB runs one query at a time per
process, and a stream open for the length of a large report would hold
every other query (the API, the sinks) until it ends; a chunk is a short
query between theirs. The staging table also gives the row count up front
(progress) and the summary figures without a second run of the query.

Chunks are presented as the API presents figures: floats rounded to 2
decimals (Python's round, as analytics.figures), times as ISO 8601 UTC
strings with milliseconds and Z.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from lms_events.clickhouse import ClickHouseStore
from reports.definitions import Request, Shape

CHUNK_ROWS = 20_000
_ROW = "_row"


@dataclass(frozen=True)
class Staged:
    store: ClickHouseStore
    table: str
    total: int

    async def chunks(self, size: int = CHUNK_ROWS) -> AsyncIterator[pa.Table]:
        for start in range(0, self.total, size):
            table = await self.store.query_arrow(
                f"SELECT * EXCEPT {_ROW} FROM {self.table} WHERE {_ROW} >= {{lo:UInt64}} AND {_ROW} < {{hi:UInt64}} ORDER BY {_ROW}",
                {"lo": start, "hi": start + size},
            )
            yield present(table)

    async def summary(self, shape: Shape) -> dict[str, object]:
        figures = ", ".join(f"{sql} AS f{n}" for n, sql in enumerate(shape.summary.values()))
        rows = await self.store.query(f"SELECT {figures} FROM {self.table}")
        return {label: rows[0][f"f{n}"] for n, label in enumerate(shape.summary)}

    async def chart(self, shape: Shape, bars: int) -> list[tuple[str, float]]:
        label, value = shape.chart
        order = "label DESC" if shape.chronological else "value DESC, label"
        rows = await self.store.query(
            f"SELECT toString({label}) AS label, toFloat64(ifNull({value}, 0)) AS value FROM {self.table} "
            f"ORDER BY {order} LIMIT {int(bars)}"
        )
        bars_found = [(row["label"], float(row["value"])) for row in rows]
        return bars_found[::-1] if shape.chronological else bars_found

    async def drop(self) -> None:
        await self.store.execute(f"DROP TABLE IF EXISTS {self.table}")


def staging_table(job_id: str) -> str:
    return f"report_rows_{job_id.replace('-', '')}"


async def stage(store: ClickHouseStore, job_id: str, shape: Shape, request: Request) -> Staged:
    """Run the report's query into its staging table (replacing one a crashed run left), keeping its
    shape's columns in their order."""
    table = staging_table(job_id)
    columns = ", ".join(f"`{column}`" for column in shape.columns)
    await store.execute(f"DROP TABLE IF EXISTS {table}")
    await store.execute(
        f"CREATE TABLE {table} ENGINE = MergeTree ORDER BY {_ROW} AS "
        f"SELECT rowNumberInAllBlocks() AS {_ROW}, {columns} FROM ({shape.query(request)})",
        request.bind(),
    )
    rows = await store.query(f"SELECT count() AS n FROM {table}")
    return Staged(store, table, int(rows[0]["n"]))


def present(table: pa.Table) -> pa.Table:
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_floating(kind):
            column = pa.array([None if v is None else round(v, 2) for v in column.to_pylist()], type=pa.float64())
        elif pa.types.is_timestamp(kind):
            column = pc.strftime(pc.cast(column, pa.timestamp("ms", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ")
        elif pa.types.is_date(kind):
            column = pc.cast(column, pa.string())  # YYYY-MM-DD, as the API writes days
        elif pa.types.is_dictionary(kind):
            column = pc.cast(column, kind.value_type)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)
