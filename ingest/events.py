"""The event as the gateway holds it, from the request body to its Kafka message.

`Event` is the envelope of `schemas/event.schema.json` as a msgspec struct
(ingest.schema_types): its scalar fields are decoded and checked in C
while the body is parsed. Its three sub-objects (`device_info`, `context`,
`properties`) stay the raw JSON the client sent: the validator checks
them against their schemas, and they are copied byte for byte into the
stored event, keys the schemas do not name included. Top-level fields
outside the envelope are not kept: the events table has no column for
them; custom data belongs in `properties`.

An event msgspec cannot type (an invalid one, or one with `5.0` where an
integer is expected...) is parsed into its plain JSON value instead, and
checked against the JSON Schema itself (ingest.validation).

`StoredEvent` is what an accepted event becomes on `events.raw`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Raw, UnsetType

import schemas
from ingest.schema_types import SchemaTypes
from lms_events.errors import BadRequest

SUB_OBJECTS = ("device_info", "context", "properties")
# msgspec, like Python, gives up some way short of 1,000 levels of nesting, and
# orjson (which the stream side reads with) at 1,024: such bodies are refused.
TOO_DEEP = "body is JSON nested too deeply"

# event_type is checked against the taxonomy's spellings and timestamp by
# the time rules (ingest.validation), both cheaper there than as patterns.
Event: Any = SchemaTypes().struct(
    schemas.event_envelope(),
    "Event",
    overrides={"event_type": str, "timestamp": str, **dict.fromkeys(SUB_OBJECTS, Raw)},
)


class _BatchObject(msgspec.Struct, gc=False):
    batch: list[Event]  # type: ignore[valid-type]


class _RawBatchObject(msgspec.Struct, gc=False):
    batch: list[Raw]


_BATCH = msgspec.json.Decoder(list[Event] | _BatchObject)  # type: ignore[valid-type]
_RAW_BATCH = msgspec.json.Decoder(list[Raw] | _RawBatchObject)
_ONE = msgspec.json.Decoder(Event)
_JSON_VALUE = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()
encode = _ENCODER.encode


def decode_batch(body: bytes) -> list[Any] | None:
    """The events of a `/v1/batch` body (`{"batch": [...]}` or an array): each an
    `Event`, or the plain JSON value of one msgspec could not type. None when the
    body is not a batch: the caller parses it to say why."""
    decoded = _decode(_BATCH, body)
    if decoded is None:
        # Some event cannot be typed: the others still are, one by one.
        decoded = _decode(_RAW_BATCH, body)
        if decoded is None:
            return None
        raws = decoded if isinstance(decoded, list) else decoded.batch
        return [_decode(_ONE, raw) or _decode(_JSON_VALUE, raw) for raw in raws]
    return decoded if isinstance(decoded, list) else decoded.batch


def decode_one(body: bytes) -> Any | None:
    return _decode(_ONE, body)


def _decode(decoder: msgspec.json.Decoder, body: bytes) -> Any | None:
    try:
        return decoder.decode(body)
    except msgspec.DecodeError:  # also msgspec.ValidationError
        return None
    except RecursionError:
        raise BadRequest(TOO_DEEP) from None


def from_json_value(event: dict[str, Any]) -> Any:
    """An `Event` from a parsed event that passed its JSON Schema."""
    fields = {name: event[name] for name in Event.__struct_fields__ if name in event}
    for name in SUB_OBJECTS:
        if name in fields:
            fields[name] = Raw(encode(fields[name]))
    return Event(**fields)


def to_json_value(event: Any) -> dict[str, Any]:
    """The JSON value of an `Event`, as the JSON Schema checks it."""
    value = {name: getattr(event, name) for name in Event.__struct_fields__ if getattr(event, name) is not UNSET}
    for name in SUB_OBJECTS:
        if name in value:
            value[name] = load_sub_object(value[name])
    return value


def load_sub_object(raw: Raw) -> Any:
    return _JSON_VALUE.decode(raw)


class StoredEvent(msgspec.Struct, gc=False):
    """An accepted event as published to `events.raw` (see streams/event_batch.py)."""

    event_id: str
    event_type: str  # canonical name
    event_category: str
    timestamp: str  # canonical form, see ingest.timestamps
    received_at: str
    is_late: bool
    organization_id: str  # the write key's
    user_id: str | None | UnsetType
    session_id: str | None | UnsetType
    privacy_level: str
    retention_days: int
    client_ip: str
    device_info: Raw | UnsetType
    context: Raw | UnsetType
    properties: Raw | UnsetType
