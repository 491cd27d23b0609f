"""Delivery of scheduled reports: sending mail is the platform's mailer's
job, not ours. When a schedule's job completes, its recipients (as the
schedule named them when the run was created) get a notification record
(`report_notifications`) and ride on the job's ReportGenerated event.

`Delivering` stands where the worker expects its publisher: every
completed job still publishes ReportGenerated as before (when a broker is
configured); a scheduled one is first recorded for the mailer, broker or
not.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import structlog

from lms_events.clickhouse import ClickHouseStore
from reports.ledger import StoredJob
from reports.published import ReportPublisher
from reports.schedule_runs import RunLog

log = structlog.get_logger(__name__)

TABLE = "report_notifications"
SCHEMA = pa.schema([
    ("organization_id", pa.string()), ("job_id", pa.string()), ("schedule_id", pa.string()), ("report_type", pa.string()),
    ("format", pa.string()), ("file_path", pa.string()), ("recipients", pa.list_(pa.string())),
    ("created_at", pa.timestamp("ms", tz="UTC")),
])  # fmt: skip


class Delivering(ReportPublisher):
    """A publisher that notifies a scheduled report's recipients; `inner` publishes (None: no broker)."""

    def __init__(self, store: ClickHouseStore, inner: ReportPublisher | None) -> None:
        self.store = store
        self.inner = inner
        self.runs = RunLog(store)

    async def stop(self) -> None:
        if self.inner is not None:
            await self.inner.stop()

    async def publish(self, stored: StoredJob, **extra: object) -> None:
        job = stored.job
        if job.schedule_id is not None:
            run = await self.runs.of_job(job.organization_id, job.schedule_id, job.id)
            recipients = list(run.recipients) if run is not None else []
            await self.notify(stored, recipients)
            extra = {**extra, "scheduleId": job.schedule_id, "recipients": recipients}
        if self.inner is not None:
            await self.inner.publish(stored, **extra)

    async def notify(self, stored: StoredJob, recipients: list[str]) -> None:
        job = stored.job
        row = {
            "organization_id": job.organization_id, "job_id": job.id, "schedule_id": job.schedule_id,
            "report_type": job.report_type, "format": job.output.format,
            "file_path": job.output.storage.path if job.output.storage else None, "recipients": recipients,
            "created_at": datetime.now(UTC),
        }  # fmt: skip
        await self.store.insert_arrow(TABLE, pa.Table.from_pylist([row], schema=SCHEMA), dedup_token=f"notify:{job.id}")
        log.info("report_notification_recorded", job_id=job.id, schedule_id=job.schedule_id, recipients=len(recipients))
