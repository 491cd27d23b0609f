"""Load micro-batches of rows into one ClickHouse table, replay-safe.

- The Arrow schema comes from `DESCRIBE TABLE`, so the table's column
  list in `sql/` is the only one.
- Each insert carries a dedup token derived from the Kafka coordinates of
  the batch, so a retried insert of the same batch inserts nothing; the
  table's ReplacingMergeTree key collapses replays with other boundaries.
- A failed insert is retried with capped backoff until it succeeds: the
  agent does not return, so the batch is not acknowledged and its offsets
  are not committed before ClickHouse has the rows.
- `events` is loaded through `event_loads`, each event signed against
  what `events` holds (`EventLoadSink`, streams/event_loads.py), so the
  read models count a replay or a re-enrichment once.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import structlog

from lms_events import metrics
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import StorageError
from lms_events.settings import Settings
from streams import event_loads
from streams.route import EVENT_LOADS_TABLE, EVENTS_TABLE

log = structlog.get_logger(__name__)

RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0

_SIMPLE_TYPES: dict[str, pa.DataType] = {
    "String": pa.string(),
    "UInt8": pa.uint8(),
    "UInt16": pa.uint16(),
    "UInt32": pa.uint32(),
    "UInt64": pa.uint64(),
    "Int8": pa.int8(),
    "Int16": pa.int16(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "Date": pa.date32(),
    "Bool": pa.bool_(),
}
_WRAPPER = re.compile(r"^(LowCardinality|Nullable)\((.*)\)$")
_ARRAY = re.compile(r"^Array\((.*)\)$")
_DATETIME64 = re.compile(r"^DateTime64\((\d)(?:,\s*'([^']+)')?\)$")


def arrow_type(clickhouse_type: str) -> pa.DataType:
    """The Arrow type to send for a ClickHouse column type."""
    if match := _WRAPPER.match(clickhouse_type):
        return arrow_type(match.group(2))
    if match := _ARRAY.match(clickhouse_type):
        return pa.list_(arrow_type(match.group(1)))
    if match := _DATETIME64.match(clickhouse_type):
        unit = {"0": "s", "3": "ms", "6": "us", "9": "ns"}[match.group(1)]
        return pa.timestamp(unit, tz=match.group(2) or "UTC")
    if clickhouse_type in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[clickhouse_type]
    raise StorageError(f"no Arrow mapping for ClickHouse type {clickhouse_type}")


def batch_token(batch: Iterable[Any]) -> str:
    """Dedup token from the (topic, partition, offset) of every Kafka message in a
    batch of Faust events: the same batch replayed gets the same token."""
    digest = hashlib.sha256()
    for topic, partition, offset in sorted((e.message.topic, e.message.partition, e.message.offset) for e in batch):
        digest.update(f"{topic}:{partition}:{offset};".encode())
    return digest.hexdigest()


T = TypeVar("T")


async def retrying(action: Callable[[], Awaitable[T]], failure: str, **context: Any) -> T:
    """`action()` until ClickHouse takes it, with capped backoff: meanwhile the agent holds its batch."""
    delay = RETRY_FIRST_S
    while True:
        try:
            return await action()
        except StorageError as exc:
            log.error(failure, error=str(exc)[:500], retry_in_s=delay, **context)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)


def load_version() -> int:
    """ReplacingMergeTree version of a load: later loads (re-enrichment) win."""
    return time.time_ns() // 1000


class TableSink:
    def __init__(
        self, store: ClickHouseStore, table: str, schema: pa.Schema, on_stored: Callable[[], None] | None = None
    ) -> None:
        self.store = store
        self.table = table
        self.schema = schema
        self._on_stored = on_stored

    @classmethod
    async def for_table(
        cls, store: ClickHouseStore, table: str, on_stored: Callable[[], None] | None = None
    ) -> TableSink:
        columns = await store.query(f"DESCRIBE TABLE {table}")
        fields = [
            pa.field(c["name"], arrow_type(c["type"]), nullable="Nullable(" in c["type"])
            for c in columns
            if c["default_type"] not in ("MATERIALIZED", "ALIAS", "EPHEMERAL")
        ]
        return cls(store, table, pa.schema(fields), on_stored)

    def to_arrow(self, rows: list[dict[str, Any]]) -> pa.Table:
        """Rows -> Arrow; only the columns the rows carry, so table DEFAULTs apply to the rest."""
        present = [f for f in self.schema if f.name in rows[0]]
        return pa.Table.from_pylist(rows, schema=pa.schema(present))

    def conform(self, batch: pa.Table) -> pa.Table:
        """The columns of `batch` this table has, in its types; the table's DEFAULTs fill the rest."""
        present = pa.schema([f for f in self.schema if f.name in batch.column_names])
        return batch.select(present.names).cast(present)

    async def write(self, rows: list[dict[str, Any]], *, token: str) -> None:
        if rows:
            await self.write_arrow(self.to_arrow(rows), token=token)

    async def write_arrow(self, batch: pa.Table, *, token: str) -> None:
        if not batch.num_rows:
            return
        table = self.conform(batch)
        started = time.perf_counter()
        await retrying(
            lambda: self.store.insert_arrow(self.table, table, dedup_token=token),
            "sink_insert_failed", table=self.table, rows=table.num_rows,
        )
        metrics.sink_stored(self.table, table.num_rows, time.perf_counter() - started, time.time())
        if self._on_stored is not None:
            self._on_stored()


class ArrowSink(Protocol):
    async def write_arrow(self, batch: pa.Table, *, token: str) -> None: ...


# One lookup-and-insert at a time in a process: a backfill batch running beside the
# stream (both inside `lms-events up`) could otherwise read the same stored version
# of an event as the stream, and both would take it back.
_SIGNING = asyncio.Lock()
# The same lock, for an erasure's recomputation of rollup days in this process
# (lms_events/erasure.py): no event is loaded into those days while it runs.
EVENT_LOADS_LOCK = _SIGNING


class EventLoadSink:
    """Loads `events` through `event_loads`: asks which events of a batch are stored,
    then inserts the batch signed (streams/event_loads.py), in one insert."""

    def __init__(self, store: ClickHouseStore, loads: TableSink) -> None:
        self.store = store
        self.loads = loads

    @classmethod
    async def for_store(cls, store: ClickHouseStore) -> EventLoadSink:
        return cls(store, await TableSink.for_table(store, EVENT_LOADS_TABLE))

    async def write_arrow(self, batch: pa.Table, *, token: str) -> None:
        if not batch.num_rows:
            return
        rows = self.loads.conform(batch)
        async with _SIGNING:
            stored = await retrying(
                lambda: event_loads.stored_versions(self.store, rows), "sink_lookup_failed", table=EVENTS_TABLE, rows=rows.num_rows
            )
            # A retried insert keeps these signs: asked again after an insert that did land
            # but failed to answer, ClickHouse would call the batch a replay and the
            # read models would miss it; the token drops the insert that landed instead.
            await self.loads.write_arrow(event_loads.signed(rows, stored), token=token)


class Sinks:
    """One sink per table, described on first use (the tables exist once migrations ran)."""

    def __init__(self, store: ClickHouseStore) -> None:
        self._store = store
        self._sinks: dict[str, TableSink] = {}
        self._events: EventLoadSink | None = None
        # When any sink last stored a batch (epoch seconds): `up`'s /health reports it.
        self.last_stored_at: float | None = None

    def _stored(self) -> None:
        self.last_stored_at = time.time()

    async def for_table(self, table: str) -> TableSink:
        if table not in self._sinks:
            self._sinks[table] = await TableSink.for_table(self._store, table, self._stored)
        return self._sinks[table]

    async def for_route(self, table: str) -> ArrowSink:
        """The sink of the rows routed to `table`: `events` takes them signed, through `event_loads`."""
        if table != EVENTS_TABLE:
            return await self.for_table(table)
        if self._events is None:
            self._events = EventLoadSink(self._store, await self.for_table(EVENT_LOADS_TABLE))
        return self._events


def observe_freshness(stored: pa.Table) -> None:
    """Accepted-to-stored of a batch just stored: from its oldest `received_at` (the gateway's stamp)."""
    if stored.num_rows:
        oldest_ms = pc.min(stored["received_at"]).value
        if oldest_ms is not None:
            metrics.FRESHNESS.observe(max(0.0, time.time() - oldest_ms / 1000))


def micro_batches(stream: Any, settings: Settings) -> Any:
    """A stream's events in sink micro-batches: at most LMS_EVENTS_SINK_BATCH_MESSAGES
    Kafka messages, or whatever arrived within LMS_EVENTS_SINK_BATCH_WITHIN_S."""
    return stream.take_events(settings.sink_batch_messages, within=settings.sink_batch_within_s)
