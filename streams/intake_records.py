"""Loaders for the gateway's bookkeeping topics: one agent per topic, one table each.

- `intake.outcomes` -> `intake_outcomes`: per-request status counts.
- `consent.records` -> `consent_records`: the durable copy of consent.

Same replay-safety as the event sink: one insert per micro-batch with a
dedup token from the batch's Kafka coordinates, tables replacing on key.
A message that cannot be decoded goes to `events.rejected` with the
reason, as in every other agent, and the loader carries on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
import structlog

from lms_events.generations import subscribed_topic
from lms_events.settings import Settings
from lms_events.topics import CONSENT_RECORDS, INTAKE_OUTCOMES
from streams import rows
from streams.sink import Sinks, batch_token, load_version, micro_batches

log = structlog.get_logger(__name__)

RowsFromPayload = Callable[[dict[str, Any], int], list[dict[str, Any]]]
SendToBadRows = Callable[[list[dict[str, Any]]], Awaitable[None]]


def add_table_loader(
    app: faust.App,
    settings: Settings,
    sinks: Sinks,
    send_to_bad_rows: SendToBadRows,
    topic_name: str,
    table: str,
    to_rows: RowsFromPayload,
    subscriptions: dict[str, list[str]] | None = None,
) -> None:
    topic = subscribed_topic(app, topic_name, subscriptions, value_serializer="raw", key_serializer="raw")

    async def load(stream: faust.StreamT) -> None:
        async for batch in micro_batches(stream, settings):
            version = load_version()
            table_rows: list[dict[str, Any]] = []
            poison: list[dict[str, Any]] = []
            for message in batch:
                try:
                    table_rows.extend(to_rows(orjson.loads(message.value), version))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    log.warning("poison_message", topic=topic_name, offset=message.message.offset, error=str(exc))
                    poison.append(rows.poison_record(message.message, f"cannot load message: {exc}", "decode"))
            sink = await sinks.for_table(table)
            await sink.write(table_rows, token=batch_token(batch))
            await send_to_bad_rows(poison)

    load.__name__ = f"load_{table}"
    app.agent(topic, name=f"load_{table}")(load)


def register_intake_loaders(
    app: faust.App,
    settings: Settings,
    sinks: Sinks,
    send_to_bad_rows: SendToBadRows,
    subscriptions: dict[str, list[str]] | None = None,
) -> None:
    add_table_loader(
        app, settings, sinks, send_to_bad_rows, INTAKE_OUTCOMES, "intake_outcomes", rows.outcome_rows, subscriptions
    )
    add_table_loader(
        app,
        settings,
        sinks,
        send_to_bad_rows,
        CONSENT_RECORDS,
        "consent_records",
        lambda record, v: [rows.consent_row(record, v)],
        subscriptions,
    )
