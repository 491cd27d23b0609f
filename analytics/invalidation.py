"""Cached answers dropped as soon as the data behind them changed.

The stream worker publishes one `AnalyticsUpdated` per changed entity
and coalescing window on `analytics.events` (streams/analytics.py). Each
API process reads that topic from its end, without a consumer group (every
process must see every notification), and bumps the generation of the
entity's organization in Redis (analytics/cache.py): every cached answer
of that organization is then a miss. Coarser than per entity, never
stale: a dashboard depends on every entity of its organization anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson
import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from analytics.cache import bump
from lms_events.generations import ANALYTICS_EVENTS_PATTERN
from lms_events.tasks import cancel_and_wait
from lms_events.topics import ANALYTICS_UPDATED

log = structlog.get_logger(__name__)

RETRY_AFTER_S = 1.0
METADATA_REFRESH_MS = 10_000


async def _follow(bootstrap: str, redis: Redis) -> None:
    # By pattern: under `up` the topic has generations (lms_events/generations.py), each
    # created a rotation ahead, found within the metadata refresh, read from its start.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="latest",
        enable_auto_commit=False,
        metadata_max_age_ms=METADATA_REFRESH_MS,
    )
    consumer.subscribe(pattern=ANALYTICS_EVENTS_PATTERN)
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            organizations = set()
            for records in batches.values():
                for record in records:
                    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
                        message = orjson.loads(record.value)
                        # the topic also carries ReportGenerated, which changes no figure
                        if message.get("eventType") == ANALYTICS_UPDATED:
                            organizations.add(str(message.get("organizationId") or ""))
            await bump(redis, organizations)
    finally:
        await consumer.stop()


async def follow_updates(bootstrap: str, redis: Redis) -> None:
    """Bump generations for every AnalyticsUpdated, until cancelled; survives broker and Redis outages."""
    while True:
        try:
            await _follow(bootstrap, redis)
        except (KafkaError, RedisError, OSError) as exc:
            log.warning("analytics_invalidation_interrupted", error=str(exc))
            await asyncio.sleep(RETRY_AFTER_S)


@contextlib.asynccontextmanager
async def following(bootstrap: str, redis: Redis) -> AsyncIterator[None]:
    task = asyncio.create_task(follow_updates(bootstrap, redis))
    yield
    await cancel_and_wait(task)
