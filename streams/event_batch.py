"""A micro-batch of events as the Arrow columns of the event tables.

The agent adds the events of each Kafka message; a message is taken whole
or not at all (`add` raises and leaves the batch as it was). The batch then
becomes one Arrow table, from which each sink takes the columns its table
has (`events`, `perf_events`, `bi_events`) and routing takes the rows.

Columnar, one Python list per column and one Arrow conversion per column
and batch, because per-event dicts converted row by row were most of the
worker's CPU. The column names and ClickHouse types live in `sql/`; the
types below are the ones the values are built in, which the sink casts to
its table's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pyarrow as pa

from streams.enrich import Enricher, category_of
from streams.reference import ReferenceLookup
from streams.route import Route, route_for
from streams.rows import parse_timestamp

TIMESTAMP = pa.timestamp("ms", tz="UTC")
COLUMN_TYPES: dict[str, pa.DataType] = {
    "event_id": pa.string(),
    "event_type": pa.string(),
    "event_category": pa.string(),
    "timestamp": TIMESTAMP,
    "received_at": TIMESTAMP,
    "is_late": pa.bool_(),
    "client_ip": pa.string(),
    "organization_id": pa.string(),
    "user_id": pa.string(),
    "session_id": pa.string(),
    "privacy_level": pa.string(),
    "retention_days": pa.uint16(),
    "platform": pa.string(),
    "device_info": pa.string(),
    "context": pa.string(),
    "properties": pa.string(),
    "course_id": pa.string(),
    "class_id": pa.string(),
    "enrollment_id": pa.string(),
    "department_id": pa.string(),
    "user_role": pa.string(),
    "content_type": pa.string(),
    # Float32 in the tables; analytics averages the scores as sent.
    "score": pa.float64(),
    "duration_ms": pa.uint64(),
    "enrichment_missing": pa.list_(pa.string()),
    "is_error": pa.bool_(),
    # Not stored: the assessment the analytics coalescer counts the event for.
    "assessment_id": pa.string(),
}
VERSION_TYPE = pa.uint64()
# Errors of a value that cannot be held in its column (a number as event_id, a retention of
# 10^6 days, a timestamp that is not ISO 8601).
UNCONVERTIBLE = (pa.ArrowException, ValueError, TypeError, OverflowError)

_NOTHING: Mapping[str, Any] = {}


def _json_text(value: Any) -> str:
    # As str: orjson's bytes keep their whole write buffer, which made holding a batch of them slow.
    return orjson.dumps(value or _NOTHING).decode()


def assessment_id_of(event: Mapping[str, Any]) -> str:
    properties = event.get("properties") or _NOTHING
    context = event.get("context") or _NOTHING
    return str(properties.get("assessment_id") or context.get("assessment_id") or "")


class EventBatch:
    def __init__(self, version: int, lookup: ReferenceLookup) -> None:
        self.version = version
        self._enricher = Enricher(lookup)
        self._columns: dict[str, list[Any]] = {name: [] for name in COLUMN_TYPES}
        # Where each message's events end, to take a message out again.
        self._messages: list[tuple[Any, int]] = []
        self.routes: list[Route] = []
        # (row, event) of the events that raise an alert.
        self._alerting: list[tuple[int, dict[str, Any]]] = []

    @property
    def alert_events(self) -> list[dict[str, Any]]:
        return [event for _row, event in self._alerting]

    def add(self, events: list[dict[str, Any]], message: Any) -> None:
        """Add the events of one Kafka message; KeyError, TypeError, ValueError or
        AttributeError for an event the message should not hold, and then nothing is added."""
        devices = [event.get("device_info") or _NOTHING for event in events]
        columns: dict[str, list[Any]] = {
            "event_id": [event["event_id"] for event in events],
            "event_type": [event["event_type"] for event in events],
            "event_category": [category_of(event) for event in events],
            "timestamp": [event["timestamp"] for event in events],
            "received_at": [event["received_at"] for event in events],
            "is_late": [bool(event.get("is_late", False)) for event in events],
            "client_ip": [event.get("client_ip") or "" for event in events],
            "organization_id": [event.get("organization_id") or "" for event in events],
            "user_id": [event.get("user_id") or "" for event in events],
            "session_id": [event.get("session_id") or "" for event in events],
            "privacy_level": [event["privacy_level"] for event in events],
            "retention_days": [event["retention_days"] for event in events],
            "platform": [device.get("platform") or "" for device in devices],
            "device_info": [_json_text(device) for device in devices],
            "context": [_json_text(event.get("context")) for event in events],
            "properties": [_json_text(event.get("properties")) for event in events],
            "assessment_id": [assessment_id_of(event) for event in events],
            **self._enricher.columns(events),
        }
        routes = list(map(route_for, columns["event_type"], columns["event_category"]))
        columns["is_error"] = [route.alert for route in routes]
        first = len(self.routes)
        for name, values in columns.items():
            self._columns[name].extend(values)
        self._alerting.extend((first + i, event) for i, (route, event) in enumerate(zip(routes, events)) if route.alert)
        self.routes.extend(routes)
        self._messages.append((message, len(self.routes)))

    def to_arrow(self) -> tuple[pa.Table, list[tuple[Any, str]]]:
        """The batch as one Arrow table, and the messages left out with the reason:
        those holding a value Arrow cannot convert to its column's type."""
        try:
            return _table(self._columns, self.version), []
        except UNCONVERTIBLE:
            pass
        unconvertible: list[tuple[int, int, Any, str]] = []
        start = 0
        for message, end in self._messages:
            try:
                _table({name: values[start:end] for name, values in self._columns.items()}, self.version)
            except UNCONVERTIBLE as exc:
                unconvertible.append((start, end, message, str(exc)))
            start = end
        for start, end, _message, _reason in reversed(unconvertible):
            self._drop(start, end)
        return _table(self._columns, self.version), [(message, reason) for _s, _e, message, reason in unconvertible]

    def _drop(self, start: int, end: int) -> None:
        """Take the events [start, end) of one message out of the batch."""
        for values in self._columns.values():
            del values[start:end]
        del self.routes[start:end]
        removed = end - start
        self._alerting = [(row - removed if row >= end else row, event) for row, event in self._alerting if not start <= row < end]
        self._messages = [(message, last - removed if last >= end else last) for message, last in self._messages if last != end]


def _timestamps(values: list[str]) -> pa.Array:
    """ISO 8601 strings as UTC milliseconds. Arrow parses those with an offset (what the
    gateway writes) in C++; the rest (no offset, meaning UTC, as ClickHouse prints them;
    sub-millisecond digits) take the Python way."""
    try:
        return pa.array(values, pa.string()).cast(TIMESTAMP)
    except pa.ArrowInvalid:
        return pa.array([parse_timestamp(value) for value in values], TIMESTAMP)


def _array(name: str, values: list[Any]) -> pa.Array:
    column_type = COLUMN_TYPES[name]
    return _timestamps(values) if column_type == TIMESTAMP else pa.array(values, type=column_type)


def _table(columns: dict[str, list[Any]], version: int) -> pa.Table:
    arrays = {name: _array(name, values) for name, values in columns.items()}
    arrays["_version"] = pa.array([version] * len(columns["event_id"]), type=VERSION_TYPE)
    return pa.table(arrays)
