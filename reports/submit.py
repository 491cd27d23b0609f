"""Submitting a report job: the one way a job enters the system, for the
API and for anything else that creates jobs (the scheduler, later).

A job is stored `pending`; unless it is scheduled for later it becomes
`queued` at once and goes on its priority's stream, else it waits in the
queue's delayed set until scheduledFor and the worker queues it then.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec

from analytics.scope import Scope
from reports import jobs
from reports.ledger import Ledger, StoredJob, instant, now_iso
from reports.models import Output, ReportJob, ReportJobRequest
from reports.queue import ReportQueue


def new_job(request: ReportJobRequest, scope: Scope, organization_id: str) -> StoredJob:
    now = now_iso()
    fields = msgspec.structs.asdict(request)
    output = Output(format=request.output.format, filename=fields.pop("output").filename)
    job = ReportJob(
        id=str(uuid.uuid4()), organization_id=organization_id, status=jobs.PENDING, requested_by=scope.sub,
        created_at=now, updated_at=now, output=output, **fields,
    )  # fmt: skip
    return StoredJob(job, str(scope.role), scope.departments, version=1)


async def submit(ledger: Ledger, queue: ReportQueue, stored: StoredJob) -> StoredJob:
    stored = await ledger.create(stored)
    job = stored.job
    due = instant(job.scheduled_for)
    if due is not None and due > datetime.now(UTC):
        await queue.enqueue_at(job.id, job.organization_id, job.priority, due.timestamp())
        return stored
    stored = await ledger.transition(stored, jobs.QUEUED)
    await queue.enqueue(job.id, job.organization_id, job.priority)
    return stored
