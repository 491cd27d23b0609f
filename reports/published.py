"""`ReportGenerated` (analytics seed, published events) on `analytics.events`,
one per completed job, keyed by organization.

A notification about a file that already exists: published after the
job's completed transition, so a worker killed between the two loses the
message (consumers can list completed jobs); a broker that does not take
it within PUBLISH_TIMEOUT_S is logged, never fails the job. The producer
connects on first use: a broker that is down when the process starts
(the gateway answers 503 meanwhile) must not keep it from starting.
"""

from __future__ import annotations

import asyncio

import orjson
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from lms_events.topics import ANALYTICS_EVENTS, REPORT_GENERATED
from reports.ledger import StoredJob

log = structlog.get_logger(__name__)

PUBLISH_TIMEOUT_S = 5.0


def report_generated(stored: StoredJob) -> dict[str, object]:
    job = stored.job
    storage = job.output.storage
    return {
        "eventType": REPORT_GENERATED,
        "reportId": job.id,
        "reportType": job.report_type,
        "requestedBy": job.requested_by,
        "organizationId": job.organization_id,
        "format": job.output.format,
        "filePath": storage.path if storage else None,
        "generatedAt": job.completed_at,
    }


class ReportPublisher:
    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None

    async def _connected(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=False)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def publish(self, stored: StoredJob, **extra: object) -> None:
        """ReportGenerated of the job; `extra` fields join it (a scheduled report's recipients)."""
        message = orjson.dumps({**report_generated(stored), **extra})
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                producer = await self._connected()
                await producer.send_and_wait(ANALYTICS_EVENTS, message, key=stored.job.organization_id.encode())
        except (KafkaError, TimeoutError) as exc:
            log.warning("report_generated_not_published", job_id=stored.job.id, error_type=type(exc).__name__)
