"""The report worker: takes jobs off the queue and generates their files.

    loop:  due delayed jobs -> their streams (promote_due)
           jobs of crashed workers (XAUTOCLAIM, idle > visibility) -> restarted
           new jobs (XREADGROUP, most urgent first) -> run, at most `concurrency` at once
           every CLEANUP_EVERY_S: files and jobs past expiresAt removed

A job's message is acknowledged only once its job reached a final state
(completed, failed, cancelled) or was rescheduled for a retry, so a
worker killed mid-run leaves the message pending and another worker (or
this one restarted) reruns the job; the completed transition is a
compare-and-set, so a job completes once however often it ran. While a
job runs its message is renewed every visibility/3 seconds, so a long
job is never taken over from a live worker.

Each completed job publishes ReportGenerated (reports/published.py) when
a broker is configured.

Failures are retried MAX_RETRIES times, after reports_retry_base_s * 2^n
seconds, then the job is failed with the last error kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import traceback
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from analytics.params import iso_z
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import Conflict, StorageError
from lms_events.settings import Settings
from reports import jobs
from reports.generate import JobCancelled, generate
from reports.ledger import DELETED, Ledger, StoredJob, now_iso
from reports.models import JobError, Progress
from reports.published import ReportPublisher
from reports.queue import Message, ReportQueue
from reports.storage import ReportFiles

log = structlog.get_logger(__name__)

MAX_RETRIES = 3
CLAIM_BLOCK_MS = 1000
CLEANUP_EVERY_S = 60.0
RETRY_PAUSE_S = 1.0


def _log_failure(task: asyncio.Task[None]) -> None:
    """A job whose processing broke (Redis or ClickHouse away) stays pending: it is reclaimed later."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("report_job_interrupted", error_type=type(task.exception()).__name__)


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class ReportWorker:
    def __init__(
        self, settings: Settings, store: ClickHouseStore, redis: Redis, publisher: ReportPublisher | None = None
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.ledger = Ledger(store, redis)
        self.queue = ReportQueue(redis)
        self.storage = ReportFiles(settings)
        self.consumer = consumer_name()
        self._visibility_ms = int(settings.reports_visibility_s * 1000)

    async def run(self, stop: asyncio.Event) -> None:
        await self.queue.ensure_group()
        running: set[asyncio.Task[None]] = set()
        next_cleanup = 0.0
        log.info("report_worker_started", consumer=self.consumer, concurrency=self.settings.reports_concurrency)
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() >= next_cleanup:
                        await self.remove_expired()
                        next_cleanup = time.monotonic() + CLEANUP_EVERY_S
                    await self._take(running)
                except (RedisError, StorageError) as exc:
                    # Redis or ClickHouse away for a moment: nothing is lost (messages stay pending), try again.
                    log.warning("report_worker_retrying", error_type=type(exc).__name__)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), RETRY_PAUSE_S)
        finally:
            # Unacknowledged messages stay pending: whoever runs next reclaims them.
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            log.info("report_worker_stopped", consumer=self.consumer)

    async def _take(self, running: set[asyncio.Task[None]]) -> None:
        await self.queue.promote_due()
        free = self.settings.reports_concurrency - len(running)
        if free <= 0:
            await asyncio.wait(running, timeout=CLAIM_BLOCK_MS / 1000, return_when=asyncio.FIRST_COMPLETED)
            return
        messages = await self.queue.reclaim(self.consumer, free, self._visibility_ms)
        if len(messages) < free:
            messages += await self.queue.claim(self.consumer, free - len(messages), CLAIM_BLOCK_MS)
        for message in messages:
            task = asyncio.create_task(self.process(message))
            running.add(task)
            task.add_done_callback(running.discard)
            task.add_done_callback(_log_failure)

    async def process(self, message: Message) -> None:
        stored = await self.ledger.find(message.organization_id, message.job_id)
        if stored is None:  # deleted
            await self.queue.ack(message)
            return
        # Redis decides; a job whose hash expired (or a Redis that lost it) is as ClickHouse has it.
        status = await self.ledger.status(message.job_id) or stored.job.status
        if status in jobs.FINAL or status == DELETED:
            await self.queue.ack(message)
            return
        try:
            stored = await self._start(stored, status, message)
        except Conflict:
            await self.queue.ack(message)  # cancelled meanwhile, or another worker's
            return
        if stored is None:
            await self.queue.ack(message)
            return
        renewing = asyncio.create_task(self._renew(message))
        try:
            await self._run(stored)
        finally:
            renewing.cancel()
        await self.queue.ack(message)

    async def _start(self, stored: StoredJob, status: str, message: Message) -> StoredJob | None:
        if status == jobs.PENDING:
            stored = await self.ledger.transition(stored, jobs.QUEUED)
            status = jobs.QUEUED
        if status == jobs.QUEUED:
            return await self.ledger.transition(stored, jobs.RUNNING, started_at=now_iso())
        if status == jobs.RUNNING and message.reclaimed:
            log.warning("report_job_reclaimed", job_id=stored.job.id)
            return await self.ledger.transition(stored, jobs.RUNNING, name="restarted", started_at=now_iso())
        return None  # a running job's second message: its first is being served

    async def _renew(self, message: Message) -> None:
        while True:
            await asyncio.sleep(self.settings.reports_visibility_s / 3)
            await self.queue.renew(self.consumer, message)

    async def _progress(self, job_id: str, progress: Progress) -> bool:
        if await self.ledger.status(job_id) != jobs.RUNNING:
            return False
        await self.ledger.set_progress(job_id, progress)
        return True

    async def _run(self, stored: StoredJob) -> None:
        job = stored.job
        started = time.monotonic()
        try:
            location, progress = await generate(
                self.ledger.store,
                self.storage,
                stored,
                dropped_after_days=self.settings.dropped_after_days,
                on_progress=lambda progress: self._progress(job.id, progress),
            )
        except JobCancelled:
            log.info("report_job_cancelled", job_id=job.id)
            return
        except Exception as exc:  # noqa: BLE001 - every failure is kept on the job and retried
            await self._failed(stored, exc)
            return
        completed = datetime.now(UTC)
        expires = iso_z(completed + timedelta(days=self.settings.reports_retention_days))
        located = msgspec.structs.replace(location, expires_at=expires)
        try:
            completed_job = await self.ledger.transition(
                stored,
                jobs.COMPLETED,
                completed_at=iso_z(completed),
                expires_at=expires,
                progress=progress,
                output=msgspec.structs.replace(job.output, storage=located),
            )
        except Conflict:  # cancelled while the file was being stored
            await asyncio.to_thread(self.storage.delete, located)
            return
        log.info("report_job_completed", job_id=job.id, report_type=job.report_type, rows=progress.total_records,
                 seconds=round(time.monotonic() - started, 3))  # fmt: skip
        if self.publisher is not None:
            await self.publisher.publish(completed_job)

    async def _failed(self, stored: StoredJob, exc: Exception) -> None:
        previous = stored.job.error.retry_count if stored.job.error else 0
        code = "storage-error" if isinstance(exc, StorageError) else "generation-error"
        now = now_iso()
        last_retry = stored.job.error.last_retry_at if stored.job.error else None
        error = JobError(code=code, message=str(exc)[:500], retry_count=previous, last_retry_at=last_retry)
        stack = "".join(traceback.format_exception(exc))[-8000:]
        log.warning("report_job_error", job_id=stored.job.id, code=code, error_type=type(exc).__name__, retries=previous)
        try:
            if previous < MAX_RETRIES:
                error = msgspec.structs.replace(error, retry_count=previous + 1, last_retry_at=now)
                await self.ledger.transition(stored, jobs.QUEUED, name="retry-scheduled", error=error, error_stack=stack)
                due = time.time() + self.settings.reports_retry_base_s * 2**previous
                await self.queue.enqueue_at(stored.job.id, stored.job.organization_id, stored.job.priority, due)
            else:
                await self.ledger.transition(stored, jobs.FAILED, error=error, error_stack=stack)
        except Conflict:
            pass  # cancelled meanwhile: nothing to retry

    async def remove_expired(self) -> int:
        """Files and jobs past expiresAt: the file deleted, the job with it (history stays in ClickHouse)."""
        rows = await self.ledger.store.query(
            """SELECT organization_id, job_id FROM (
                   SELECT organization_id, job_id, deleted, expires_at FROM report_jobs
                   ORDER BY version DESC LIMIT 1 BY organization_id, job_id)
               WHERE deleted = 0 AND expires_at IS NOT NULL AND expires_at < now64(3)"""
        )
        for row in rows:
            stored = await self.ledger.find(row["organization_id"], row["job_id"])
            if stored is None:
                continue
            if stored.job.output.storage is not None:
                await asyncio.to_thread(self.storage.delete, stored.job.output.storage)
            await self.ledger.delete(stored)
        if rows:
            log.info("report_jobs_expired", jobs=len(rows))
        return len(rows)

