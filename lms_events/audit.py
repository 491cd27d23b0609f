"""The audit trail (sql/0022_audit_log.sql): append-only rows of who
touched whose data.

Rows are buffered and written by one background flush every
FLUSH_INTERVAL_S (or when FLUSH_ROWS are waiting), so a read pays no
ClickHouse insert; a crash loses at most the last interval's rows, and a
clean stop flushes. A failed flush keeps the rows for the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import structlog

from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import StorageError
from lms_events.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

TABLE = "audit_log"
FLUSH_INTERVAL_S = 0.5
FLUSH_ROWS = 1000
# Rows kept while ClickHouse refuses them; beyond this the oldest are dropped (and logged).
MAX_PENDING_ROWS = 100_000

SCHEMA = pa.schema(
    [
        ("at", pa.timestamp("ms", tz="UTC")),
        ("organization_id", pa.string()),
        ("actor", pa.string()),
        ("actor_role", pa.string()),
        ("action", pa.string()),
        ("subject_user_id", pa.string()),
        ("target", pa.string()),
        ("detail", pa.string()),
        ("client_ip", pa.string()),
        ("request_id", pa.string()),
    ]
)


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    organization_id: str
    actor: str
    actor_role: str
    action: str
    subject_user_id: str = ""
    target: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    client_ip: str = ""
    request_id: str = ""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(self) -> dict[str, Any]:
        row = asdict(self)
        row["detail"] = orjson.dumps(self.detail, option=orjson.OPT_SORT_KEYS).decode()
        return row


async def write_now(store: ClickHouseStore, entry: AuditEntry) -> None:
    """One row, written before the caller goes on: for rare changes (keys, consent) that
    must be on record even if the process dies right after."""
    await store.insert_arrow(TABLE, pa.Table.from_pylist([entry.row()], schema=SCHEMA), dedup_token=str(uuid.uuid4()))


class AuditTrail:
    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()

    def record(self, entry: AuditEntry) -> None:
        self._pending.append(entry.row())
        if len(self._pending) >= FLUSH_ROWS:
            self._wake.set()

    async def flush(self) -> int:
        rows, self._pending = self._pending, []
        if not rows:
            return 0
        try:
            await self.store.insert_arrow(TABLE, pa.Table.from_pylist(rows, schema=SCHEMA), dedup_token=str(uuid.uuid4()))
        except StorageError as exc:
            self._pending = (rows + self._pending)[-MAX_PENDING_ROWS:]
            log.warning("audit_flush_failed", rows=len(rows), error=str(exc))
            return 0
        return len(rows)

    async def _flush_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL_S)
            self._wake.clear()
            await self.flush()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[AuditTrail]:
        task = asyncio.create_task(self._flush_forever())
        try:
            yield self
        finally:
            await cancel_and_wait(task)
            await self.flush()
