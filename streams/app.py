"""The Faust stream app: collect -> enrich -> route -> load.

Reads top-down like the flow: app, topics, tables, agents, timers.
- `build_reference` turns domain events (user/course/assessment topics)
  into reference entities and facts: ClickHouse first (the entities'
  durable copy and `domain_facts`, one row per domain event), then the
  Faust tables enrichment reads.
- `load_events` enriches each event of `events.raw` from those tables,
  routes it by category to `events`, `perf_events` or `bi_events` (errors
  also to Kafka `alerts`) and loads each table with one insert per
  micro-batch (`events` through `event_loads`, each event signed against
  what is stored, so the read models count replays once); then it hands
  the stored rows to the AnalyticsUpdated coalescer, which a timer drains
  to `analytics.events`.
- `load_rejected` loads the bad rows.
- Events and domain events of erased users are dropped before anything
  is stored and counted `erased` (streams/erased.py); each micro-batch
  is taken inside the tombstones' `loading()`, reloading them first.

Each agent takes a micro-batch of Kafka messages (each message a
sub-batch of events). Faust acknowledges the batch only when the agent
body returns, i.e. after ClickHouse has the rows, and commits offsets
after that (at_least_once); the sinks make the replays that follow a
crash harmless. A message an agent cannot understand goes to
`events.rejected` with the reason and the agent carries on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
import structlog
from faust.exceptions import NotReady

from ingest.privacy import pii_secret
from lms_events import tombstones
from lms_events.clickhouse import ClickHouseStore
from lms_events.generations import TopicsByName, subscribed_topic
from lms_events.settings import CLUSTER_SESSION_TIMEOUT_S, Settings
from lms_events.topics import (
    ALERTS,
    ANALYTICS_EVENTS,
    DOMAIN_TOPICS,
    RAW_EVENTS,
    REJECTED_EVENTS,
    STREAM_APP_ID,
)
from streams import facts, reference, reference_store, rows
from streams.analytics import AnalyticsCoalescer
from streams.erased import OUTCOMES_TABLE, ErasedDrops
from streams.event_batch import EventBatch
from streams.intake_records import register_intake_loaders
from streams.rebalances import tolerate_rebalances
from streams.reference_tables import ReferenceTables
from streams.route import REJECTED_TABLE, rows_by_table
from streams.sink import Sinks, batch_token, load_version, micro_batches, observe_freshness, retrying

log = structlog.get_logger(__name__)

# Offsets are committed this often (seconds); the drain on stop waits for it.
COMMIT_INTERVAL_S = 0.5
# Bytes one fetch may return per partition. A message is a client's
# sub-batch (tens of KiB); Faust's 1 MiB default made the worker wait on
# fetch round trips of a few dozen messages instead of processing.
MAX_FETCH_BYTES_PER_PARTITION = 16 * 1024 * 1024
ALERT_TYPE = "ErrorEventReceived"
# Under topic generations, Faust's per-partition "Stream has not started processing" check
# misfires: it counts from the worker's start, not the partition's assignment, so a new
# generation's partition is "late" once the worker has run its 300 s default (21 multi-line
# warnings in a 10-minute soak, every generation consumed). `up` watches consuming itself
# (the stall watch in lms_events/spooling.py, crashes in lms_events/up.py), so the check
# moves out of the way there; against a cluster it keeps Faust's default.
GENERATIONS_STREAM_CHECK_S = 24 * 3600.0
# Faust waits this long before acting on a subscription change (45 s by default, to
# gather the changes of agents restarting); here it is a new topic generation.
RESUBSCRIBE_DELAY_S = 0.5


def _alert(event: Mapping[str, Any]) -> dict[str, Any]:
    """What an on-call consumer needs about an error event; no user id (the event_id leads to it)."""
    return {
        "alertType": ALERT_TYPE,
        "eventId": event["event_id"],
        "eventType": event["event_type"],
        "organizationId": event.get("organization_id") or "",
        "platform": (event.get("device_info") or {}).get("platform") or "",
        "timestamp": rows.parse_timestamp(event["timestamp"]).isoformat(timespec="milliseconds"),
        "properties": event.get("properties") or {},
    }


def create_stream_app(
    settings: Settings,
    store: ClickHouseStore,
    sinks: Sinks | None = None,
    subscriptions: dict[str, list[str]] | None = None,
    topic_for: Callable[[str], str] | None = None,
) -> faust.App:
    """The app; `sinks` when the caller reports on them (`up`'s /health); `subscriptions`
    under the embedded broker: the generations each rotated topic is read from
    (lms_events/generations.py), lists that change while the app runs; `topic_for`: where
    its notifications go now (analytics.events has generations there too)."""
    assert settings.kafka_bootstrap_servers is not None
    tolerate_rebalances()
    app = faust.App(
        STREAM_APP_ID,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        web_enabled=False,
        datadir=str(settings.faust_data_dir),
        topic_partitions=settings.kafka_topic_partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=COMMIT_INTERVAL_S,
        broker_rebalance_timeout=settings.kafka_rebalance_timeout_s,
        broker_session_timeout=settings.kafka_session_timeout_s or CLUSTER_SESSION_TIMEOUT_S,
        broker_heartbeat_interval=1.0,
        stream_wait_empty=True,
        consumer_max_fetch_size=MAX_FETCH_BYTES_PER_PARTITION,
        **({"stream_processing_timeout": GENERATIONS_STREAM_CHECK_S} if subscriptions else {}),
    )

    app.topics._resubscribe_sleep_lock_seconds = RESUBSCRIBE_DELAY_S
    raw_events = subscribed_topic(app, RAW_EVENTS, subscriptions, value_serializer="raw", key_serializer="raw")
    rejected_events = subscribed_topic(app, REJECTED_EVENTS, subscriptions, value_serializer="raw", key_serializer="raw")
    domain_events = app.topic(*DOMAIN_TOPICS, value_serializer="raw", key_serializer="raw")
    # Where what the app publishes goes now (a generation of it, under the embedded broker).
    bad_rows = TopicsByName(app, REJECTED_EVENTS, topic_for, value_serializer="raw", key_serializer="raw")
    alerts = TopicsByName(app, ALERTS, topic_for, value_serializer="raw", key_serializer="raw")
    analytics_events = TopicsByName(app, ANALYTICS_EVENTS, topic_for, value_serializer="raw", key_serializer="raw")

    reference_tables = ReferenceTables(app)
    # Set once the tables hold everything ClickHouse has: enriching before
    # would store gaps that only a backfill could fill.
    reference_loaded = asyncio.Event()
    coalescer = AnalyticsCoalescer()
    sinks = sinks or Sinks(store)
    erased = tombstones.for_store(store, pii_secret(settings.pii_secret, settings.data_dir))

    async def erasure_aware(batches: Any) -> Any:
        """Each micro-batch inside `loading()` (lms_events/tombstones.py) until the agent asks
        for the next one, with the tombstones reloaded: an erasure waits for the batches
        begun before its tombstone, and the later ones drop the person's events."""
        async for batch in batches:
            async with erased.loading():
                await retrying(lambda: erased.reload(store), "tombstones_reload_failed")
                yield batch

    async def count_erased(drops: ErasedDrops, token: str, version: int) -> None:
        if drops.counts:
            outcomes = await sinks.for_table(OUTCOMES_TABLE)
            await outcomes.write(drops.outcome_rows(token, version), token=f"erased:{token}")

    async def send_to_bad_rows(records: list[dict[str, Any]]) -> None:
        if records:
            await bad_rows.current().send(value=orjson.dumps({"rejected": records}))

    async def publish_analytics() -> None:
        for update in coalescer.drain():
            await analytics_events.current().send(key=update["entityId"].encode(), value=orjson.dumps(update))

    @app.task
    async def reload_reference() -> None:
        # After changelog recovery, so only what the changelog lacked is written again.
        await app.tables.recovery.completed.wait()
        reference_tables.reload(await reference_store.load_all(store))
        reference_loaded.set()

    @app.agent(domain_events)
    async def build_reference(stream: faust.StreamT) -> None:
        async for batch in erasure_aware(micro_batches(stream, settings)):
            drops = ErasedDrops(erased)
            version = load_version()
            merged: dict[reference.EntityId, dict[str, Any]] = {}
            fact_rows: list[dict[str, Any]] = []
            poison: list[dict[str, Any]] = []
            for message in batch:
                try:
                    event = reference.decode(message.value)
                    if drops.domain_event(event):
                        continue
                    published_at = datetime.fromtimestamp(message.message.timestamp, UTC)
                    fact = facts.fact_row(event, message.value, published_at, version)
                    updates = reference.updates_from(event)
                except reference.PoisonDomainEvent as exc:
                    log.warning("poison_message", topic=message.message.topic, offset=message.message.offset, error=str(exc))
                    poison.append(rows.poison_record(message.message, f"cannot load domain event: {exc}", "domain_event"))
                    continue
                fact_rows.append(fact)
                for update in updates:
                    current = merged.get(update.entity) or reference_tables.get(*update.entity)
                    merged[update.entity] = reference.merge(current, update)
            token = batch_token(batch)
            entity_sink = await sinks.for_table(reference_store.REFERENCE_TABLE)
            await entity_sink.write(reference_store.entity_rows(merged, version), token=token)
            fact_sink = await sinks.for_table(facts.FACTS_TABLE)
            await fact_sink.write(fact_rows, token=token)
            await count_erased(drops, token, version)
            reference_tables.apply(merged)
            await send_to_bad_rows(poison)
            coalescer.observe_facts(fact_rows)
            if coalescer.full:
                await publish_analytics()

    @app.agent(raw_events)
    async def load_events(stream: faust.StreamT) -> None:
        await reference_loaded.wait()
        async for batch in erasure_aware(micro_batches(stream, settings)):
            events = EventBatch(load_version(), reference_tables)
            drops = ErasedDrops(erased)
            poison: list[dict[str, Any]] = []
            for message in batch:
                try:
                    # The whole message or none of it: a bad event makes it a poison message.
                    events.add(drops.events(rows.decode_events(message.value)), message.message)
                except (rows.UndecodableMessage, KeyError, TypeError, ValueError, AttributeError) as exc:
                    log.warning("poison_message", topic=RAW_EVENTS, offset=message.message.offset, error=str(exc))
                    poison.append(rows.poison_record(message.message, f"cannot load message: {exc}", "decode"))
            stored, unconvertible = events.to_arrow()
            for kafka_message, reason in unconvertible:
                log.warning("poison_message", topic=RAW_EVENTS, offset=kafka_message.offset, error=reason)
                poison.append(rows.poison_record(kafka_message, f"cannot load message: {reason}", "decode"))
            await send_to_bad_rows(poison)
            token = batch_token(batch)
            for table, table_rows in rows_by_table(stored, events.routes).items():
                sink = await sinks.for_route(table)
                await sink.write_arrow(table_rows, token=token)
            observe_freshness(stored)
            await count_erased(drops, token, events.version)
            for event in events.alert_events:
                await alerts.current().send(key=(event.get("organization_id") or "").encode(), value=orjson.dumps(_alert(event)))
            coalescer.observe(stored)
            if coalescer.full:
                await publish_analytics()

    @app.agent(rejected_events)
    async def load_rejected(stream: faust.StreamT) -> None:
        async for batch in micro_batches(stream, settings):
            version = load_version()
            bad_rows: list[dict[str, Any]] = []
            for message in batch:
                try:
                    records = rows.decode_rejected(message.value)
                    source = "gateway"
                except rows.UndecodableMessage as exc:
                    records = [rows.poison_record(message.message, f"cannot load message: {exc}", "decode")]
                    source = "stream"
                for record in records:
                    try:
                        bad_rows.append(rows.rejected_row(record, version, source=source))
                    except (KeyError, TypeError, ValueError) as exc:
                        record_id = f"kafka:{message.message.topic}/{message.message.partition}/{message.message.offset}/{len(bad_rows)}"
                        fallback = rows.bad_row(record_id, orjson.dumps(record), f"malformed bad-row: {exc}", "decode")
                        bad_rows.append(rows.rejected_row(fallback, version, source="stream"))
            sink = await sinks.for_table(REJECTED_TABLE)
            await sink.write(bad_rows, token=batch_token(batch))

    @app.timer(settings.analytics_window_s)
    async def publish_analytics_window() -> None:
        try:
            await publish_analytics()
        except NotReady:
            # The app is stopping and its producer is gone: this window's
            # notifications are dropped (they are hints; the rows are stored).
            log.info("analytics_window_dropped_on_stop")

    register_intake_loaders(app, settings, sinks, send_to_bad_rows, subscriptions)
    return app
