"""Domain events of the analytics seed (UserCreated, CourseCreated, ...).

Validated against `schemas/domain_events.schema.json`, each produced as
one Kafka message to its topic (`x-topic`), keyed by its entity id
(`x-key`), for the stream app's reference tables and domain facts. Each
is published with an `eventId`: the producer's, else the digest of the
event as sent (lms_events/domain_identity.py), taken before the gateway
stamps `organizationId` and `occurredAt`, so a re-posted event is the
same fact. A `UserCreated` that carries `consent`, `ageBand` or
`parentalConsent` also sets the user's consent record. An event naming
an erased user (`userId`) is `erased`: neither published nor stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson

import schemas
from ingest import timestamps
from ingest.consent import ConsentRecord
from ingest.publish import KafkaMessage
from ingest.validation import SchemaCheck, Violation
from lms_events.domain_identity import event_id_as_sent
from lms_events.write_keys import WriteKey

CONSENT_FIELDS = ("consent", "ageBand", "parentalConsent")


@dataclass(frozen=True)
class DomainEventType:
    name: str
    topic: str
    key_field: str
    check: SchemaCheck
    # date-time fields: the schema admits a leap second, which no stored time can hold
    time_fields: tuple[str, ...]


@cache
def domain_event_types() -> dict[str, DomainEventType]:
    document = schemas.load("domain_events.schema.json")
    return {
        name: DomainEventType(
            name,
            spec["x-topic"],
            spec["x-key"],
            SchemaCheck({"$schema": document["$schema"], "$defs": document["$defs"], "$ref": f"#/$defs/{name}"}),
            tuple(field for field, rule in spec["properties"].items() if rule.get("format") == "date-time"),
        )
        for name, spec in document["$defs"].items()
        if "x-topic" in spec
    }


@dataclass
class DomainOutcome:
    results: list[dict[str, Any]]
    messages: list[KafkaMessage]
    consent_records: list[ConsentRecord] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        totals = dict.fromkeys(("accepted", "rejected", "erased"), 0)
        for result in self.results:
            totals[result["status"]] += 1
        return totals

    def as_json(self) -> dict[str, Any]:
        return {"totals": self.totals(), "results": self.results}


def _violations(event: Any, key: WriteKey) -> tuple[DomainEventType | None, list[Violation]]:
    if not isinstance(event, dict):
        return None, [Violation("(event)", "type", "a domain event must be a JSON object")]
    kind = domain_event_types().get(event_type) if isinstance(event_type := event.get("eventType"), str) else None
    if kind is None:
        known = ", ".join(sorted(domain_event_types()))
        return None, [Violation("eventType", "enum", f"unknown domain event {event.get('eventType')!r}; one of {known}")]
    violations = kind.check.violations(event)
    if not violations:  # the schema holds, so the time fields are date-time strings
        violations = [
            Violation(field, "format", f"{event[field]!r} is not a time that can be stored")
            for field in kind.time_fields
            if field in event and timestamps.parse(event[field]) is None
        ]
    organization_id = event.get("organizationId")
    if organization_id and organization_id != key.organization_id:
        violations.append(Violation("organizationId", "organization", "the write key belongs to another organization"))
    return kind, violations


def _consent_record(event: dict[str, Any], organization_id: str) -> ConsentRecord | None:
    if event["eventType"] != "UserCreated" or not any(f in event for f in CONSENT_FIELDS):
        return None
    return ConsentRecord(
        organization_id=organization_id,
        user_id=event["userId"],
        categories={k: bool(v) for k, v in (event.get("consent") or {}).items()},
        age_band=event.get("ageBand"),
        parental_consent=event.get("parentalConsent"),
        updated_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )


def users_named(events: list[Any]) -> set[str]:
    return {user for event in events if isinstance(event, dict) and isinstance(user := event.get("userId"), str) and user}


def decide(events: list[Any], key: WriteKey, erased: set[str] = frozenset()) -> DomainOutcome:  # type: ignore[assignment]
    """`erased`: the users of `events` who were erased (ingest/erased.py)."""
    outcome = DomainOutcome([], [])
    for index, event in enumerate(events):
        kind, violations = _violations(event, key)
        if violations or kind is None:
            outcome.results.append(
                {"index": index, "status": "rejected", "errors": [v.as_json() for v in violations]}
            )
            continue
        if erased and event.get("userId") in erased:
            outcome.results.append({"index": index, "status": "erased", "event_type": kind.name})
            continue
        event_id = event_id_as_sent(event)
        stamped = {**event, "eventId": event_id, "organizationId": key.organization_id}
        stamped.setdefault("occurredAt", datetime.now(UTC).isoformat(timespec="milliseconds"))
        outcome.messages.append(KafkaMessage(kind.topic, str(event[kind.key_field]).encode(), orjson.dumps(stamped)))
        record = _consent_record(event, key.organization_id)
        if record is not None:
            outcome.consent_records.append(record)
        outcome.results.append(
            {"index": index, "status": "accepted", "event_type": kind.name, "event_id": event_id, "topic": kind.topic}
        )
    return outcome
