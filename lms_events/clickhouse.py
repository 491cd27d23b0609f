"""One storage interface to ClickHouse, two drivers.

- `ChdbStore`: the ClickHouse engine in-process (chDB) on an on-disk data
  dir. Only one process may own that dir, so in embedded mode the process
  running `lms-events up` serves the sinks, the query API and the workers.
- `ServerStore`: a ClickHouse server through clickhouse-connect; every
  role can then run in its own process.

Both run the same SQL (the files in `sql/`) against the same database, so
nothing above this module knows which one it talks to. Both connect with
the database as the session default, so migrations use unqualified names.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import orjson
import pyarrow as pa

from lms_events.errors import StorageError
from lms_events.settings import Settings

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# A retried insert must not reach the materialized views twice either: event_loads
# (a Null table) holds nothing, its views' targets are where the token is checked.
_DEDUP_IN_VIEWS = {"deduplicate_blocks_in_dependent_materialized_views": 1}
_DEDUP_IN_VIEWS_SQL = ", ".join(f"{name} = {value}" for name, value in _DEDUP_IN_VIEWS.items())


class ClickHouseStore(Protocol):
    driver: str
    database: str

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None: ...

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...

    async def query_arrow(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        """The result as Arrow (typed columns, no per-row objects): how reports read their rows."""
        ...

    async def query_arrow_with(
        self, rows: pa.Table, sql: Callable[[str], str], params: dict[str, Any] | None = None
    ) -> pa.Table:
        """The result of `sql(table)` as Arrow, where `table` names `rows` to the query: how a batch
        asks about itself in one round trip, without spelling its values into the SQL."""
        ...

    async def insert_arrow(self, table: str, rows: pa.Table, *, dedup_token: str) -> None:
        """Insert `rows`; a retry with the same `dedup_token` inserts nothing."""
        ...

    async def query_bytes(self, sql: str, fmt: str, params: dict[str, Any] | None = None) -> tuple[bytes, int | None]:
        """The answer of `sql` encoded by ClickHouse in output format `fmt`, and its row count when
        the driver knows it. Parameter values are in ClickHouse's text form (a list is an array; `{name:Type}` parses them)."""
        ...

    async def close(self) -> None: ...


def _check_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise StorageError(f"not a valid ClickHouse identifier: {name!r}")
    return name


class ChdbStore:
    driver = "chdb"

    def __init__(self, path: str, database: str) -> None:
        from chdb import session

        self.database = _check_identifier(database)
        # chDB sessions are not safe to call from several threads at once:
        # one worker thread serialises every call and keeps the event loop free.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chdb")
        self._session = session.Session(path)
        self._session.query(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        self._session.query(f"USE {self.database}")

    def _run(self, sql: str, fmt: str, params: dict[str, Any] | None) -> Any:
        try:
            if params:
                return self._session.query(sql, fmt, params={name: _escaped(value) for name, value in params.items()})
            return self._session.query(sql, fmt)
        except Exception as exc:  # chdb raises its own ChdbError and RuntimeError
            self._flush_failed_output()
            raise StorageError(str(exc).strip()) from exc

    def _flush_failed_output(self) -> None:
        # chDB 4.4: what a query that failed mid-answer had written (its format's header and
        # footer: a JSON document, Parquet magic, ...) is prepended to the next query's
        # result. A throwaway query takes it, so the next caller reads only its own answer.
        # Its own failure is not reported: the original error is the one the caller needs.
        with contextlib.suppress(Exception):
            self._session.query("SELECT 1", "CSV")

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        await self._call(self._run, sql, "CSV", params)

    def _run_bytes(self, sql: str, fmt: str, params: dict[str, Any] | None) -> tuple[bytes, int]:
        # Copied out on the chDB thread: a result's buffer is not stable once the session runs
        # the next query (seen: a JSONEachRow answer read as garbage while an analyst query ran).
        result = self._run(sql, fmt, params)
        return result.bytes(), result.rows_read()

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        body, _ = await self._call(self._run_bytes, sql, "JSONEachRow", params)
        return [orjson.loads(line) for line in body.splitlines() if line]

    async def query_arrow(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        return await self._call(self._run, sql, "ArrowTable", params)

    async def query_arrow_with(
        self, rows: pa.Table, sql: Callable[[str], str], params: dict[str, Any] | None = None
    ) -> pa.Table:
        return await self._call(self._query_arrow_with, rows, sql, params)

    def _query_arrow_with(self, rows: pa.Table, sql: Callable[[str], str], params: dict[str, Any] | None) -> pa.Table:
        # As in _insert_arrow: Python() reads the table from this frame's locals.
        arrow_rows = rows  # noqa: F841
        return self._run(sql("Python(arrow_rows)"), "ArrowTable", params)

    async def insert_arrow(self, table: str, rows: pa.Table, *, dedup_token: str) -> None:
        await self._call(self._insert_arrow, _check_identifier(table), rows, dedup_token)

    async def query_bytes(self, sql: str, fmt: str, params: dict[str, Any] | None = None) -> tuple[bytes, int | None]:
        # chDB counts the rows of the answer it encoded (rows_read of the result, not of the tables).
        body, rows = await self._call(self._run_bytes, sql, fmt, params)
        return body, rows

    def _insert_arrow(self, table: str, rows: pa.Table, dedup_token: str) -> None:
        columns = ", ".join(_check_identifier(name) for name in rows.column_names)
        # chDB's Python() table function reads the Arrow table from this frame's locals.
        arrow_rows = rows  # noqa: F841
        self._run(
            f"INSERT INTO {table} ({columns}) SETTINGS insert_deduplication_token = {{token:String}}, "
            f"{_DEDUP_IN_VIEWS_SQL} "
            f"SELECT {columns} FROM Python(arrow_rows)",
            "CSV",
            {"token": dedup_token},
        )

    async def close(self) -> None:
        await self._call(self._session.close)
        self._executor.shutdown(wait=True)


class ServerStore:
    driver = "clickhouse-connect"

    def __init__(self, client: Any, database: str) -> None:
        self._client = client
        self.database = database

    @classmethod
    async def connect(cls, url: str, database: str) -> ServerStore:
        import clickhouse_connect

        _check_identifier(database)
        try:
            bootstrap = await clickhouse_connect.get_async_client(dsn=url)
            await bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {database}")
            await bootstrap.close()
            client = await clickhouse_connect.get_async_client(dsn=url, database=database)
        except Exception as exc:
            raise StorageError(f"cannot connect to ClickHouse at {_redact(url)}: {exc}") from exc
        return cls(client, database)

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        try:
            await self._client.command(sql, parameters=params)
        except Exception as exc:
            raise StorageError(str(exc)) from exc

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            result = await self._client.query(sql, parameters=params)
        except Exception as exc:
            raise StorageError(str(exc)) from exc
        return list(result.named_results())

    async def query_arrow(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        try:
            return await self._client.query_arrow(sql, parameters=params)
        except Exception as exc:
            raise StorageError(str(exc)) from exc

    async def query_arrow_with(
        self, rows: pa.Table, sql: Callable[[str], str], params: dict[str, Any] | None = None
    ) -> pa.Table:
        from clickhouse_connect.driver.external import ExternalData

        # The rows travel with the query as an external table (Arrow stream), named in `sql` by its file name.
        buffer = pa.BufferOutputStream()
        with pa.ipc.new_stream(buffer, rows.schema) as writer:
            writer.write_table(rows)
        external = ExternalData(
            file_name=EXTERNAL_TABLE, data=buffer.getvalue().to_pybytes(), fmt="ArrowStream", structure=_structure(rows.schema)
        )
        try:
            return await self._client.query_arrow(sql(EXTERNAL_TABLE), parameters=params, external_data=external)
        except Exception as exc:
            raise StorageError(str(exc)) from exc

    async def insert_arrow(self, table: str, rows: pa.Table, *, dedup_token: str) -> None:
        try:
            await self._client.insert_arrow(
                _check_identifier(table), rows, settings={"insert_deduplication_token": dedup_token, **_DEDUP_IN_VIEWS}
            )
        except Exception as exc:
            raise StorageError(str(exc)) from exc

    async def query_bytes(self, sql: str, fmt: str, params: dict[str, Any] | None = None) -> tuple[bytes, int | None]:
        try:
            answer = await self._client.raw_query(sql, parameters=params, fmt=fmt)
        except Exception as exc:
            raise StorageError(str(exc)) from exc
        return bytes(answer), None

    async def close(self) -> None:
        await self._client.close()


EXTERNAL_TABLE = "batch_rows"
# ClickHouse types of the Arrow types a batch sends along with a query.
_EXTERNAL_TYPES = {pa.string(): "String", pa.date32(): "Date"}


def _structure(schema: pa.Schema) -> str:
    try:
        return ", ".join(f"{field.name} {_EXTERNAL_TYPES[field.type]}" for field in schema)
    except KeyError as exc:
        raise StorageError(f"no ClickHouse type for a query's Arrow column of type {exc.args[0]}") from exc


# chDB reads a query parameter's value in ClickHouse's escaped text form (as the
# server reads an HTTP param_*), so a backslash, tab or newline in a string must be
# escaped; a list is an array literal, whose quoted elements carry their own escapes
# (the form clickhouse-connect sends for a list).
_PARAM_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


class EngineText(str):
    """A parameter value already in ClickHouse's escaped text form, as the ClickHouse HTTP
    interface receives `param_*` from a client: chDB gets it as it is."""

    __slots__ = ()


def _escaped(value: Any) -> Any:
    if isinstance(value, EngineText):
        return str(value)
    if isinstance(value, str):
        return value.translate(_PARAM_ESCAPES)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    return value


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(_escaped(value))


def _redact(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)


async def open_store(settings: Settings) -> ClickHouseStore:
    if settings.clickhouse_url:
        return await ServerStore.connect(settings.clickhouse_url, settings.clickhouse_database)
    settings.chdb_path.mkdir(parents=True, exist_ok=True)
    return await asyncio.to_thread(ChdbStore, str(settings.chdb_path), settings.clickhouse_database)
