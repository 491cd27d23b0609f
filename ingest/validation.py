"""Validate one event: envelope, event type, properties of that type, time.

Schemas are the data files in `schemas/`, checked at three speeds:
- typed: an `Event` decoded by msgspec (ingest.events) has its envelope
  checked already; its sub-objects are decoded into the structs compiled
  from their schemas (ingest.schema_types), which checks them in C. This is
  nearly every event.
- exact: what msgspec refused, or the body it could not type, is checked
  as plain JSON by a compiled JSON Schema validator (jsonschema-rs) asked
  only "is it valid?"; msgspec refuses some valid events (`5.0` for an
  integer), and those are accepted here.
- explained: for an invalid event the pure-Python `jsonschema` says why,
  with the field path and the rule broken, which is what the client sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jsonschema
import jsonschema_rs
import msgspec

import schemas
from ingest import events, timestamps
from ingest.schema_types import DATE_TIME_PATTERN, SchemaTypes, Unsupported
from ingest.taxonomy import EventType, event_types, lookup
from ingest.timestamps import iso_ms

_CANONICAL_EXAMPLE = "YYYY-MM-DDTHH:MM:SS.mmmZ"
MAX_SPELLINGS = 1_000
MAX_REMEMBERED_SUB_OBJECTS = 10_000


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


class ValidEvent(msgspec.Struct, frozen=True, gc=False):
    # A struct, not a NamedTuple: built in C, once an event.
    event: Any  # ingest.events.Event
    event_type: EventType
    late: bool
    timestamp: str  # canonical: see ingest.timestamps


# RFC 3339 as the schema's `date-time` means it (a subset: see ingest.schema_types).
_date_time = re.compile(DATE_TIME_PATTERN).search


def _typed_decoder(schema: dict[str, Any], defs: dict[str, Any], name: str) -> msgspec.json.Decoder | None:
    try:
        return msgspec.json.Decoder(SchemaTypes(defs).struct(schema, name))
    except Unsupported:
        return None  # events with this part are checked exactly, by the JSON Schema


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


def _decode_remembered(decoder: msgspec.json.Decoder, raw: msgspec.Raw, fitting: set[bytes]) -> None:
    """Raise msgspec.ValidationError unless `raw` fits the decoder's type, or did before."""
    seen = bytes(raw)
    if seen not in fitting:
        decoder.decode(raw)
        if len(fitting) >= MAX_REMEMBERED_SUB_OBJECTS:
            fitting.clear()
        fitting.add(seen)


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
        # The same for typed events, with the decoder that checks the type's properties.
        # An alias joins once an event has shown it valid: the envelope's pattern for
        # event_type is not checked on this path.
        envelope = schemas.event_envelope()["properties"]
        defs = schemas.load("event_properties.schema.json")["$defs"]
        self._typed_device = _typed_decoder(envelope["device_info"], {}, "DeviceInfo")
        self._typed_context = _typed_decoder(envelope["context"], {}, "Context")
        self._typed_spellings: dict[str, tuple[EventType, msgspec.json.Decoder]] = {}
        # A session's events repeat its device_info and context byte for byte:
        # those seen to fit are remembered instead of decoded again.
        self._fitting_device_infos: set[bytes] = set()
        self._fitting_contexts: set[bytes] = set()
        if self._typed_device and self._typed_context:
            for name, event_type in event_types().items():
                decoder = _typed_decoder({"$ref": f"#/$defs/type_{name}"}, defs, f"Properties_{name}")
                if decoder is not None:
                    self._typed_spellings[name] = (event_type, decoder)
        self._max_future = max_future
        self._late_after = late_after

    def window(self, received_at: datetime) -> TimeWindow:
        return TimeWindow.around(received_at, max_future=self._max_future, late_after=self._late_after)

    def check(self, event: Any, window: TimeWindow) -> ValidEvent | list[Violation]:
        """`event` is an ingest.events.Event, or any JSON value when the body could not be typed."""
        if type(event) is not events.Event:
            return self._check_value(event, None, window)
        typed = self._typed_spellings.get(event.event_type)
        if typed is not None and self._sub_objects_fit(event, typed[1]):
            timestamp = event.timestamp
            # Nearly every event: a canonical timestamp not in the future, two string comparisons.
            if timestamps.is_canonical(timestamp) and timestamp <= window.latest:
                return ValidEvent(event, typed[0], timestamp < window.late_before, timestamp)
            if _date_time(timestamp):
                return self._check_time(event, timestamp, typed[0], window)
        return self._check_value(events.to_json_value(event), event, window)

    def _sub_objects_fit(self, event: Any, properties: msgspec.json.Decoder) -> bool:
        try:
            if event.properties:
                properties.decode(event.properties)
            if event.device_info:
                _decode_remembered(self._typed_device, event.device_info, self._fitting_device_infos)
            if event.context:
                _decode_remembered(self._typed_context, event.context, self._fitting_contexts)
        except msgspec.DecodeError:  # also ValidationError
            return False
        return True

    def _check_value(self, value: Any, typed: Any, window: TimeWindow) -> ValidEvent | list[Violation]:
        """The exact check, against the JSON Schema; `typed` is the value's Event if it has one."""
        if not isinstance(value, dict):
            return [Violation("(event)", "type", f"an event must be a JSON object, got {type(value).__name__}")]
        raw_type = value.get("event_type")
        known = (self._spellings.get(raw_type) or self._alias(raw_type)) if isinstance(raw_type, str) else None
        if known is None:
            return self._explain(value, None)
        event_type, fast_check = known
        if not fast_check.is_valid(value):
            return self._explain(value, event_type)
        self._remember_typed_spelling(raw_type, event_type)  # type: ignore[arg-type]
        event = typed if typed is not None else events.from_json_value(value)
        timestamp = value["timestamp"]
        if timestamps.is_canonical(timestamp) and timestamp <= window.latest:
            return ValidEvent(event, event_type, timestamp < window.late_before, timestamp)
        return self._check_time(event, timestamp, event_type, window)

    def _remember_typed_spelling(self, raw_type: str, event_type: EventType) -> None:
        typed = self._typed_spellings.get(event_type.name)
        if typed is not None and raw_type not in self._typed_spellings and len(self._typed_spellings) < MAX_SPELLINGS:
            self._typed_spellings[raw_type] = typed

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

    def _check_time(
        self, event: Any, timestamp: str, event_type: EventType, window: TimeWindow
    ) -> ValidEvent | list[Violation]:
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
        return ValidEvent(event, event_type, -ahead > self._late_after, iso_ms(moment))
