"""Erasure and export jobs: durable in ClickHouse `privacy_jobs`
(sql/0033_erasure.sql), run one at a time by a runner in the process
that serves the API.

A job is written `queued` before the request is answered (202), so a
crash loses no request: at start the runner takes up every job not
final again, from the beginning (both kinds are idempotent: an erasure
deletes what is left and recomputes, an export writes its archive
again). Each step is a new row of the job (the highest `version` wins),
which is how `GET` shows progress; the jobs run one after the other,
because each is a scan of the organization's data and chDB runs one
query at a time anyway.

Several `lms-events api` processes against one ClickHouse server would
each take up the unfinished jobs at start; running a job twice is
harmless, only slower.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import structlog

from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import StorageError
from lms_events.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

TABLE = "privacy_jobs"
ERASURE, EXPORT = "erasure", "export"
QUEUED, RUNNING, COMPLETED, FAILED = "queued", "running", "completed", "failed"
FINAL = (COMPLETED, FAILED)
# A failed step is tried again after this, as long as the job keeps failing on storage.
RETRY_AFTER_S = 5.0

_TIME = pa.timestamp("ms", tz="UTC")
SCHEMA = pa.schema(
    [
        ("organization_id", pa.string()), ("job_id", pa.string()), ("kind", pa.string()), ("user_id", pa.string()),
        ("status", pa.string()), ("step", pa.string()), ("steps_done", pa.uint16()), ("steps_total", pa.uint16()),
        ("requested_by", pa.string()), ("requester_role", pa.string()), ("created_at", _TIME),
        ("started_at", _TIME), ("completed_at", _TIME), ("expires_at", _TIME), ("counts", pa.string()),
        ("error", pa.string()), ("file_path", pa.string()), ("file_size", pa.uint64()), ("version", pa.uint64()),
    ]
)  # fmt: skip


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(kw_only=True)
class PrivacyJob:
    organization_id: str
    kind: str
    user_id: str
    requested_by: str
    requester_role: str
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: str = QUEUED
    step: str = ""
    steps_done: int = 0
    steps_total: int = 0
    created_at: datetime = field(default_factory=now)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    file_path: str = ""
    file_size: int = 0
    version: int = 0

    def row(self) -> dict[str, Any]:
        row = asdict(self)
        row["counts"] = orjson.dumps(self.counts, option=orjson.OPT_SORT_KEYS).decode()
        return row


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace(" ", "T")).replace(tzinfo=UTC)


def _job(row: dict[str, Any]) -> PrivacyJob:
    values = {name: row[name] for name in SCHEMA.names}
    for name in ("created_at", "started_at", "completed_at", "expires_at"):
        values[name] = _time(values[name])
    values["counts"] = orjson.loads(values["counts"] or "{}")
    for name in ("steps_done", "steps_total", "file_size", "version"):
        values[name] = int(values[name])
    return PrivacyJob(**values)


class JobStore:
    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store

    async def save(self, job: PrivacyJob) -> PrivacyJob:
        """A new row of the job: its state from now on."""
        job.version = max(job.version + 1, time.time_ns() // 1000)
        table = pa.Table.from_pylist([job.row()], schema=SCHEMA)
        await self.store.insert_arrow(TABLE, table, dedup_token=f"{job.job_id}:{job.version}")
        return job

    async def get(self, organization_id: str | None, job_id: str, kind: str) -> PrivacyJob | None:
        where = "job_id = {job:String} AND kind = {kind:String}"
        params: dict[str, Any] = {"job": job_id, "kind": kind}
        if organization_id is not None:
            where += " AND organization_id = {org:String}"
            params["org"] = organization_id
        rows = await self.store.query(f"SELECT * FROM {TABLE} FINAL WHERE {where}", params)
        return _job(rows[0]) if rows else None

    async def unfinished(self) -> list[PrivacyJob]:
        rows = await self.store.query(
            f"SELECT * FROM {TABLE} FINAL WHERE status NOT IN ('{COMPLETED}', '{FAILED}') ORDER BY created_at"
        )
        return [_job(row) for row in rows]


Progress = Callable[[str], Awaitable[None]]
# A job's work saves its final state itself (an erasure must save it before it deletes the
# rows naming the person) and returns it.
Work = Callable[[PrivacyJob, Progress], Awaitable[PrivacyJob]]


class Runner:
    """Runs the jobs of a process one at a time; `work` per kind returns the finished job."""

    def __init__(self, jobs: JobStore, work: dict[str, Work], steps: dict[str, int]) -> None:
        self.jobs = jobs
        self._work = work
        self._steps = steps
        self._queue: asyncio.Queue[PrivacyJob] = asyncio.Queue()

    async def submit(self, job: PrivacyJob) -> PrivacyJob:
        job.steps_total = self._steps[job.kind]
        await self.jobs.save(job)
        self._queue.put_nowait(job)
        return job

    async def run(self, job: PrivacyJob) -> PrivacyJob:
        job = replace(job, status=RUNNING, started_at=now(), steps_done=0, step="", error="")

        async def progress(step: str) -> None:
            job.step, job.steps_done = step, min(job.steps_done + 1, job.steps_total)
            await self.jobs.save(job)

        await self.jobs.save(job)
        try:
            finished = await self._work[job.kind](job, progress)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a job's failure is recorded on it, the runner goes on
            log.error("privacy_job_failed", job_id=job.job_id, kind=job.kind, error=str(exc)[:300], trace=traceback.format_exc()[-2000:])
            job.status, job.error, job.completed_at = FAILED, f"{type(exc).__name__}: {str(exc)[:500]}", now()
            await self._saved(job)
            return job
        log.info("privacy_job_completed", job_id=job.job_id, kind=job.kind)
        return finished

    async def _saved(self, job: PrivacyJob) -> None:
        while True:
            try:
                await self.jobs.save(job)
                return
            except StorageError as exc:
                log.warning("privacy_job_save_failed", job_id=job.job_id, error=str(exc)[:300])
                await asyncio.sleep(RETRY_AFTER_S)

    async def _run_forever(self) -> None:
        while True:
            job = await self._queue.get()
            await self.run(job)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Runner]:
        """Takes up the jobs a previous run left unfinished, then whatever is submitted."""
        for job in await self.jobs.unfinished():
            log.info("privacy_job_resumed", job_id=job.job_id, kind=job.kind)
            self._queue.put_nowait(job)
        task = asyncio.create_task(self._run_forever())
        try:
            yield self
        finally:
            await cancel_and_wait(task)
