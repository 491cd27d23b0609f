"""Turn a request's outcome into Kafka messages.

Faust handles a few thousand messages a second per worker, so a message
carries a sub-batch: all accepted events of one session (else user, else
organization) from one request. Keying by session keeps a session's
events ordered on one partition. Rejected events of a request travel as
one message, and so do the request's per-type status counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ingest.events import StoredEvent
from ingest.publish import KafkaMessage
from lms_events.topics import INTAKE_OUTCOMES, RAW_EVENTS, REJECTED_EVENTS
from lms_events.write_keys import WriteKey


def partition_key(event: StoredEvent) -> bytes:
    if event.session_id:
        return f"s:{event.session_id}".encode()
    if event.user_id:
        return f"u:{event.user_id}".encode()
    return f"o:{event.organization_id}".encode()


def accepted_messages(groups: dict[bytes, list[bytes]]) -> list[KafkaMessage]:
    """One message per partition key, from the events' stored JSON (serialised once, by the intake)."""
    # One join: `prefix + joined + suffix` would copy the whole sub-batch twice more.
    return [
        KafkaMessage(RAW_EVENTS, key, b"".join((b'{"events":[', b",".join(group), b"]}")))
        for key, group in groups.items()
    ]


def rejected_message(rejected: list[dict[str, Any]]) -> list[KafkaMessage]:
    if not rejected:
        return []
    return [KafkaMessage(REJECTED_EVENTS, rejected[0]["organization_id"].encode(), orjson.dumps({"rejected": rejected}))]


def outcome_message(
    counts: Mapping[tuple[str, str], int], request_id: str, key: WriteKey, received_at: str
) -> list[KafkaMessage]:
    payload = {
        "request_id": request_id,
        "organization_id": key.organization_id,
        "key_id": key.key_id,
        "received_at": received_at,
        "counts": [{"event_type": t, "status": s, "events": n} for (t, s), n in sorted(counts.items())],
    }
    return [KafkaMessage(INTAKE_OUTCOMES, key.organization_id.encode(), orjson.dumps(payload))]
