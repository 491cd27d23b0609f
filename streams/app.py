"""The Faust stream app: events.raw -> ClickHouse, events.rejected -> bad rows.

Reads top-down like the flow: app, topics, agents. Each agent takes a
micro-batch of Kafka messages (each message a sub-batch of events),
turns it into rows and loads it with one insert. Faust acknowledges the
batch only when the agent body returns, i.e. after ClickHouse has the
rows, and commits offsets after that (at_least_once); the sinks make the
replays that follow a crash harmless.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import faust
import orjson
import structlog

from lms_events.clickhouse import ClickHouseStore
from lms_events.settings import Settings
from lms_events.topics import RAW_EVENTS, REJECTED_EVENTS, STREAM_APP_ID
from streams import rows
from streams.intake_records import register_intake_loaders
from streams.sink import TableSink, batch_token, load_version

log = structlog.get_logger(__name__)

EVENTS_TABLE = "events"
REJECTED_TABLE = "rejected_events"
# Offsets are committed this often (seconds); the drain on stop waits for it.
COMMIT_INTERVAL_S = 0.5
MAX_POISON_RAW_CHARS = 32 * 1024


def _coordinates(batch: list[Any]) -> list[tuple[str, int, int]]:
    return [(e.message.topic, e.message.partition, e.message.offset) for e in batch]


def _poison_record(value: bytes | None, reason: str, rule: str) -> dict[str, Any]:
    return {
        "event_id": "",
        "organization_id": "",
        "index": -1,
        "source": "stream",
        "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "reasons": [{"field": "(message)", "rule": rule, "message": reason}],
        "raw": (value or b"").decode("utf-8", "replace")[:MAX_POISON_RAW_CHARS],
    }


def create_stream_app(settings: Settings, store: ClickHouseStore) -> faust.App:
    assert settings.kafka_bootstrap_servers is not None
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
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        stream_wait_empty=True,
    )

    raw_events = app.topic(RAW_EVENTS, value_serializer="raw", key_serializer="raw")
    rejected_events = app.topic(REJECTED_EVENTS, value_serializer="raw", key_serializer="raw")

    sinks: dict[str, TableSink] = {}

    async def sink_for(table: str) -> TableSink:
        if table not in sinks:
            sinks[table] = await TableSink.for_table(store, table)
        return sinks[table]

    async def send_to_bad_rows(records: list[dict[str, Any]]) -> None:
        if records:
            await rejected_events.send(value=orjson.dumps({"rejected": records}))

    @app.agent(raw_events)
    async def load_events(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.sink_batch_messages, within=settings.sink_batch_within_s):
            version = load_version()
            event_rows: list[dict[str, Any]] = []
            poison: list[dict[str, Any]] = []
            for message in batch:
                try:
                    for event in rows.decode_events(message.value):
                        event_rows.append(rows.event_row(event, version))
                except (rows.UndecodableMessage, KeyError, TypeError, ValueError) as exc:
                    log.warning("poison_message", topic=RAW_EVENTS, offset=message.message.offset, error=str(exc))
                    poison.append(_poison_record(message.value, f"cannot load message: {exc}", "decode"))
            await send_to_bad_rows(poison)
            sink = await sink_for(EVENTS_TABLE)
            await sink.write(event_rows, token=batch_token(_coordinates(batch)))

    @app.agent(rejected_events)
    async def load_rejected(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.sink_batch_messages, within=settings.sink_batch_within_s):
            version = load_version()
            bad_rows: list[dict[str, Any]] = []
            for message in batch:
                try:
                    records = rows.decode_rejected(message.value)
                    source = "gateway"
                except rows.UndecodableMessage as exc:
                    records = [_poison_record(message.value, f"cannot load message: {exc}", "decode")]
                    source = "stream"
                for record in records:
                    try:
                        bad_rows.append(rows.rejected_row(record, version, source=source))
                    except (KeyError, TypeError, ValueError) as exc:
                        fallback = _poison_record(orjson.dumps(record), f"malformed bad-row: {exc}", "decode")
                        bad_rows.append(rows.rejected_row(fallback, version, source="stream"))
            sink = await sink_for(REJECTED_TABLE)
            await sink.write(bad_rows, token=batch_token(_coordinates(batch)))

    register_intake_loaders(app, settings, store)
    return app
