"""Group a request's outcome into Kafka messages.

Faust handles a few thousand messages a second per worker, so a message
carries a sub-batch: all accepted events of one session (else user, else
organization) from one request. Keying by session keeps a session's
events ordered on one partition.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson

from ingest.publish import KafkaMessage
from lms_events.topics import RAW_EVENTS, REJECTED_EVENTS


def partition_key(event: dict[str, Any]) -> bytes:
    for name in ("session_id", "user_id", "organization_id"):
        value = event.get(name)
        if value:
            return f"{name[0]}:{value}".encode()
    return b""


def accepted_messages(events: list[dict[str, Any]]) -> list[KafkaMessage]:
    groups: dict[bytes, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        groups[partition_key(event)].append(event)
    return [KafkaMessage(RAW_EVENTS, key, orjson.dumps({"events": group})) for key, group in groups.items()]


def rejected_message(rejected: list[dict[str, Any]]) -> list[KafkaMessage]:
    if not rejected:
        return []
    return [KafkaMessage(REJECTED_EVENTS, b"", orjson.dumps({"rejected": rejected}))]
