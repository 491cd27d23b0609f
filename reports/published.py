"""`ReportGenerated` (analytics seed, published events) on `analytics.events`,
one per completed job, keyed by organization.

A notification about a file that already exists: published after the
job's completed transition, so a worker killed between the two loses the
message (consumers can list completed jobs); a broker that does not take
it within PUBLISH_TIMEOUT_S is logged, never fails the job.
"""

from __future__ import annotations

import asyncio

import orjson
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from lms_events.topics import ANALYTICS_EVENTS
from reports.ledger import StoredJob

log = structlog.get_logger(__name__)

EVENT_TYPE = "ReportGenerated"
PUBLISH_TIMEOUT_S = 5.0


def report_generated(stored: StoredJob) -> dict[str, object]:
    job = stored.job
    storage = job.output.storage
    return {
        "eventType": EVENT_TYPE,
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
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, stored: StoredJob) -> None:
        try:
            await asyncio.wait_for(
                self._producer.send_and_wait(
                    ANALYTICS_EVENTS, orjson.dumps(report_generated(stored)), key=stored.job.organization_id.encode()
                ),
                PUBLISH_TIMEOUT_S,
            )
        except (KafkaError, TimeoutError) as exc:
            log.warning("report_generated_not_published", job_id=stored.job.id, error_type=type(exc).__name__)
