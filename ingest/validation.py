"""Validate one event: envelope, event type, properties of that type, time.

Schemas are the data files in `schemas/`. The hot path asks compiled
validators (jsonschema-rs, a few µs an event) only "is it valid?". For
the rare invalid event the pure-Python `jsonschema` explains why, with
the field path and the rule broken, which is what the client sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import jsonschema
import jsonschema_rs

import schemas
from ingest import timestamps
from ingest.taxonomy import EventType, event_types, lookup
from ingest.timestamps import iso_ms

_CANONICAL_EXAMPLE = "YYYY-MM-DDTHH:MM:SS.mmmZ"
MAX_SPELLINGS = 1_000


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: `field` is a dotted path into the event, `rule` the schema keyword."""

    field: str
    rule: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


def _dotted(path: Any) -> str:
    return ".".join(str(part) for part in path)


class SchemaCheck:
    """A JSON Schema compiled for speed, explained for people."""

    def __init__(self, schema: dict[str, Any], *, field_prefix: str = "") -> None:
        self._fast = jsonschema_rs.validator_for(schema, validate_formats=True)
        explainer_cls = jsonschema.validators.validator_for(schema)
        self._explainer = explainer_cls(schema, format_checker=explainer_cls.FORMAT_CHECKER)
        self._prefix = field_prefix
        # Where an error at the instance's root is reported.
        self._root = field_prefix.rstrip(".") or "(event)"

    def violations(self, instance: Any) -> list[Violation]:
        if self._fast.is_valid(instance):
            return []
        found = [
            Violation(
                field=self._prefix + _dotted(error.absolute_path) if error.absolute_path else self._root,
                rule=str(error.validator),
                message=error.message,
            )
            for error in sorted(self._explainer.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
        ]
        # The two validators disagree only on exotic formats; never accept what the fast one refused.
        return found or [Violation(self._root, "schema", "does not match the schema")]


def property_schema(event_type: str) -> dict[str, Any]:
    """The standalone JSON Schema of one event type's `properties` (also served by /v1/schemas)."""
    document = schemas.load("event_properties.schema.json")
    return {"$schema": document["$schema"], "$defs": document["$defs"], "$ref": f"#/$defs/type_{event_type}"}


def event_schema(event_type: str) -> dict[str, Any]:
    """Envelope and this type's properties in one schema: one compiled check per event."""
    envelope = {k: v for k, v in schemas.event_envelope().items() if k not in ("$schema", "$id")}
    properties = property_schema(event_type)
    return {
        "$schema": properties["$schema"],
        "$defs": properties["$defs"],
        "allOf": [envelope, {"properties": {"properties": {"$ref": properties["$ref"]}}}],
    }


class ValidEvent(NamedTuple):
    event_type: EventType
    late: bool
    timestamp: str  # canonical: see ingest.timestamps


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """One request's bounds for event timestamps, also spelled canonically so
    that canonical timestamps are checked by comparing strings."""

    received_at: datetime
    latest: str
    late_before: str

    @classmethod
    def around(cls, received_at: datetime, *, max_future: timedelta, late_after: timedelta) -> TimeWindow:
        return cls(received_at, iso_ms(received_at + max_future), iso_ms(received_at - late_after))


class EventValidator:
    """Envelope + taxonomy + per-type properties + timestamp window."""

    def __init__(self, *, max_future: timedelta, late_after: timedelta) -> None:
        self._envelope = SchemaCheck(schemas.event_envelope())
        self._properties = {
            name: SchemaCheck(property_schema(name), field_prefix="properties.") for name in event_types()
        }
        # Every spelling seen so far (canonical names first, then the aliases clients
        # use) with its type and that type's compiled check: one lookup an event.
        self._spellings: dict[str, tuple[EventType, jsonschema_rs.Validator]] = {
            name: (event_type, jsonschema_rs.validator_for(event_schema(name), validate_formats=True))
            for name, event_type in event_types().items()
        }
        self._max_future = max_future
        self._late_after = late_after

    def window(self, received_at: datetime) -> TimeWindow:
        return TimeWindow.around(received_at, max_future=self._max_future, late_after=self._late_after)

    def check(self, event: Any, window: TimeWindow) -> ValidEvent | list[Violation]:
        if not isinstance(event, dict):
            return [Violation("(event)", "type", f"an event must be a JSON object, got {type(event).__name__}")]
        raw_type = event.get("event_type")
        known = (self._spellings.get(raw_type) or self._alias(raw_type)) if isinstance(raw_type, str) else None
        if known is None:
            return self._explain(event, None)
        event_type, fast_check = known
        if not fast_check.is_valid(event):
            return self._explain(event, event_type)
        timestamp = event["timestamp"]
        # Nearly every event: a canonical timestamp, not in the future; two string comparisons.
        if timestamps.is_canonical(timestamp) and timestamp <= window.latest:
            return ValidEvent(event_type, timestamp < window.late_before, timestamp)
        return self._check_time(timestamp, event_type, window)

    def _alias(self, raw_type: str) -> tuple[EventType, jsonschema_rs.Validator] | None:
        event_type = lookup(raw_type)
        if event_type is None:
            return None
        known = self._spellings[event_type.name]
        # Spellings are remembered up to a bound: "game--stage..complete" has endless variants.
        if len(self._spellings) < MAX_SPELLINGS:
            self._spellings[raw_type] = known
        return known

    def _explain(self, event: dict[str, Any], event_type: EventType | None) -> list[Violation]:
        violations = self._envelope.violations(event)
        if event_type is None and isinstance(event.get("event_type"), str):
            violations.append(
                Violation("event_type", "taxonomy", f"unknown event type {event['event_type']!r}; see GET /v1/schemas")
            )
        properties = event.get("properties", {})
        if event_type is not None and isinstance(properties, dict):
            violations.extend(self._properties[event_type.name].violations(properties))
        return violations or [Violation("(event)", "schema", "does not match the schema")]

    def _check_time(self, timestamp: str, event_type: EventType, window: TimeWindow) -> ValidEvent | list[Violation]:
        moment = timestamps.parse(timestamp)
        if moment is None:
            return [Violation("timestamp", "format", f"{timestamp!r} is not a time we can store; send {_CANONICAL_EXAMPLE}")]
        ahead = moment - window.received_at
        if ahead > self._max_future:
            return [
                Violation(
                    "timestamp",
                    "future",
                    f"is {ahead.total_seconds():.0f}s ahead of the gateway clock; "
                    f"at most {self._max_future.total_seconds():.0f}s allowed",
                )
            ]
        return ValidEvent(event_type, -ahead > self._late_after, iso_ms(moment))
