"""Turn Kafka message payloads into ClickHouse rows (dicts keyed by column).

The column names and types live only in `sql/`; the sink checks these
dicts against the table it describes at start. Events, the bulk of the
traffic, are built column by column instead (streams/event_batch.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson


class UndecodableMessage(ValueError):
    """A Kafka message that is not what the gateway produces (a poison message)."""


# What a bad row keeps of a message no agent could load.
MAX_POISON_RAW_CHARS = 32 * 1024


def parse_timestamp(value: str) -> datetime:
    """An ISO 8601 time; one without offset (as ClickHouse prints it) is UTC."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def decode_events(value: bytes) -> list[dict[str, Any]]:
    """The events of an `events.raw` message, or UndecodableMessage."""
    try:
        payload = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise UndecodableMessage(f"not JSON: {exc}") from None
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise UndecodableMessage('expected {"events": [object, ...]}')
    return events


def decode_rejected(value: bytes) -> list[dict[str, Any]]:
    try:
        payload = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise UndecodableMessage(f"not JSON: {exc}") from None
    rejected = payload.get("rejected") if isinstance(payload, dict) else None
    if not isinstance(rejected, list) or not all(isinstance(r, dict) for r in rejected):
        raise UndecodableMessage('expected {"rejected": [object, ...]}')
    return rejected


def outcome_rows(payload: dict[str, Any], version: int) -> list[dict[str, Any]]:
    """`intake_outcomes` rows from one `intake.outcomes` message."""
    received_at = parse_timestamp(payload["received_at"])
    return [
        {
            "received_at": received_at,
            "organization_id": payload["organization_id"],
            "key_id": payload["key_id"],
            "request_id": payload["request_id"],
            "event_type": count["event_type"],
            "status": count["status"],
            "events": count["events"],
            "_version": version,
        }
        for count in payload["counts"]
    ]


def consent_row(record: dict[str, Any], version: int) -> dict[str, Any]:
    return {
        "organization_id": record["organization_id"],
        "user_id": record["user_id"],
        "categories": orjson.dumps(record.get("categories") or {}).decode(),
        "age_band": record.get("age_band"),
        "parental_consent": record.get("parental_consent"),
        "updated_at": record.get("updated_at", ""),
        "_version": version,
    }


def rejected_row(record: dict[str, Any], version: int, *, source: str) -> dict[str, Any]:
    reasons = record.get("reasons") or []
    return {
        "event_id": str(record.get("event_id") or ""),
        "organization_id": str(record.get("organization_id") or ""),
        "batch_index": int(record.get("index", -1)),
        "received_at": parse_timestamp(record["received_at"]),
        "source": str(record.get("source") or source),
        "rules": [str(r.get("rule", "")) for r in reasons],
        "reasons": orjson.dumps(reasons).decode(),
        "raw": str(record.get("raw", "")),
        "_version": version,
    }


def poison_record(message: Any, reason: str, rule: str) -> dict[str, Any]:
    """A bad row for a Kafka message an agent cannot load. Its id is the message's
    coordinates: unique, so two poison messages never collapse into one row, and
    stable, so a replay of the same message does."""
    return bad_row(f"kafka:{message.topic}/{message.partition}/{message.offset}", message.value, reason, rule)


def bad_row(record_id: str, value: bytes | None, reason: str, rule: str) -> dict[str, Any]:
    return {
        "event_id": record_id,
        "organization_id": "",
        "index": -1,
        "source": "stream",
        "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "reasons": [{"field": "(message)", "rule": rule, "message": reason}],
        "raw": (value or b"").decode("utf-8", "replace")[:MAX_POISON_RAW_CHARS],
    }
