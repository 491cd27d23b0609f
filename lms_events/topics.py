"""Kafka topic names and how they are created, shared by gateway and streams.

Each message on `events.raw` carries one sub-batch of accepted events
(`{"events": [...]}`, orjson), keyed by session so one session's events
stay ordered on one partition. `events.rejected` carries rejected events
with their reasons (`{"rejected": [...]}`), the bad-rows destination.

Domain events (`user.events`, `course.events`, `assessment.events`) carry
one domain event each (camelCase, `eventType` discriminator, see
`schemas/domain_events.schema.json`), keyed by the entity id; the stream
app builds its reference tables and domain facts from them. The stream app publishes to
`alerts` (error events) and `analytics.events` (AnalyticsUpdated) and
consumes neither.
"""

from __future__ import annotations

import asyncio

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from lms_events.errors import BrokerUnavailable
from lms_events.settings import Settings

log = structlog.get_logger(__name__)

RAW_EVENTS = "events.raw"
REJECTED_EVENTS = "events.rejected"
# One message per request: how many events of each type got each status.
INTAKE_OUTCOMES = "intake.outcomes"
# Consent / age-band records per user (durable copy of the gateway's Redis view).
CONSENT_RECORDS = "consent.records"
# Domain events of the analytics seed, one per message, keyed by entity id.
USER_EVENTS = "user.events"
COURSE_EVENTS = "course.events"
ASSESSMENT_EVENTS = "assessment.events"

ALERTS = "alerts"
ANALYTICS_EVENTS = "analytics.events"
# The event types on analytics.events: the stream app's and the report worker's.
ANALYTICS_UPDATED = "AnalyticsUpdated"
REPORT_GENERATED = "ReportGenerated"

DOMAIN_TOPICS = (USER_EVENTS, COURSE_EVENTS, ASSESSMENT_EVENTS)
# What the stream app consumes: the drain on stop waits until these are committed.
def base_topic(name: str) -> str:
    """The topic a generation belongs to (`events.raw.g7` -> `events.raw`, lms_events/generations.py)."""
    base, _, generation = name.rpartition(".g")
    return base if base and generation.isdigit() else name


PIPELINE_TOPICS = (RAW_EVENTS, REJECTED_EVENTS, INTAKE_OUTCOMES, CONSENT_RECORDS, *DOMAIN_TOPICS)
# What the stream app publishes and nobody in lms-events consumes.
PUBLISHED_TOPICS = (ALERTS, ANALYTICS_EVENTS)
ALL_TOPICS = (*PIPELINE_TOPICS, *PUBLISHED_TOPICS)

# Faust's consumer group (the app id); the drain on stop reads its lag.
STREAM_APP_ID = "lms-events"


async def ensure_topics(settings: Settings, bootstrap: str, topics: tuple[str, ...] = ALL_TOPICS) -> None:
    """Create missing topics with the configured partitions and a retention bound."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await asyncio.wait_for(admin.start(), 15)
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name,
                num_partitions=settings.kafka_topic_partitions,
                replication_factor=settings.kafka_replication_factor,
                topic_configs={"retention.ms": str(settings.kafka_topic_retention_ms)},
            )
            for name in topics
            if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
            log.info("topics_created", topics=[t.name for t in missing])
    except (TimeoutError, KafkaError, OSError) as exc:
        raise BrokerUnavailable(f"cannot create topics on {bootstrap}: {exc!r}") from exc
    finally:
        await admin.close()
