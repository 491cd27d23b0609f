"""Bulk load of reference data: a JSON-lines file of domain events -> their topics.

For installations that start with existing users and courses. Each line is
one domain event as the platform would publish it (see
`schemas/domain_events.schema.json`); it goes to its topic keyed by its
entity id, exactly like a live domain event, so the reference agent builds
the same tables and facts from both. A line without `eventId` gets the
digest of the line as written (lms_events/domain_identity.py), as the
gateway does, so loading a file twice stores each fact once. Each line
must name its `organizationId` (there is no write key to take it from).
The whole file is checked before anything is sent: a file with a bad line
loads nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from lms_events.domain_identity import event_id_as_sent
from lms_events.errors import BrokerUnavailable, LmsEventsError
from streams.reference import PoisonDomainEvent, topic_and_key, validate

MAX_REPORTED_ERRORS = 20
PRODUCER_LINGER_MS = 20


class ReferenceFileError(LmsEventsError):
    def __init__(self, path: Path, errors: list[str]) -> None:
        shown = "\n".join(errors[:MAX_REPORTED_ERRORS])
        more = f"\n... and {len(errors) - MAX_REPORTED_ERRORS} more" if len(errors) > MAX_REPORTED_ERRORS else ""
        super().__init__(f"{path}: {len(errors)} bad line(s), nothing loaded:\n{shown}{more}")


@dataclass(frozen=True)
class DomainMessage:
    topic: str
    key: bytes
    value: bytes


def read_reference_file(path: Path) -> list[DomainMessage]:
    """The messages of a JSON-lines file of domain events, or ReferenceFileError naming every bad line."""
    messages: list[DomainMessage] = []
    errors: list[str] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = validate(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                errors.append(f"line {number}: not JSON: {exc}")
                continue
            except PoisonDomainEvent as exc:
                errors.append(f"line {number}: {exc}")
                continue
            topic, key = topic_and_key(event)
            identified = {**event, "eventId": event_id_as_sent(event)}
            messages.append(DomainMessage(topic, key.encode(), orjson.dumps(identified)))
    if errors:
        raise ReferenceFileError(path, errors)
    return messages


async def produce(bootstrap: str, messages: Iterable[DomainMessage]) -> int:
    """Send the messages with acks=all, in file order per key; returns how many Kafka took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=PRODUCER_LINGER_MS
    )
    try:
        await producer.start()
        futures = [await producer.send(m.topic, m.value, key=m.key) for m in messages]
        for future in futures:
            await future
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot send reference data to {bootstrap}: {exc!r}") from exc
    finally:
        await producer.stop()
    return len(futures)
