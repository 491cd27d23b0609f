"""Decide the fate of every event in a request: the gateway's core logic.

Plain functions and classes, no HTTP: the handler calls `Intake.process`
and tests call it directly. Every event posted gets exactly one status;
accepted ones become `events.raw` messages, rejected ones (with their
reasons) an `events.rejected` message, so nothing disappears silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from ingest import batching, body, privacy
from ingest.publish import KafkaMessage
from ingest.validation import EnvelopeValidator, Violation

# What we keep of a rejected event's raw JSON for the bad-rows table.
MAX_REJECTED_RAW_CHARS = body.MAX_EVENT_BYTES


class Status(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(slots=True)
class EventResult:
    index: int
    event_id: str | None
    status: Status
    errors: list[Violation] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"index": self.index, "event_id": self.event_id, "status": self.status.value}
        if self.errors:
            result["errors"] = [e.as_json() for e in self.errors]
        return result


@dataclass(slots=True)
class IntakeOutcome:
    results: list[EventResult]
    messages: list[KafkaMessage]

    def totals(self) -> dict[str, int]:
        counts = {status.value: 0 for status in Status}
        for result in self.results:
            counts[result.status.value] += 1
        return counts

    def as_json(self) -> dict[str, Any]:
        return {"totals": self.totals(), "results": [r.as_json() for r in self.results]}


def _event_id(event: Any) -> str | None:
    if isinstance(event, dict) and isinstance(event.get("event_id"), str):
        return event["event_id"]
    return None


def _iso_ms(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Intake:
    def __init__(self) -> None:
        self._validator = EnvelopeValidator()

    def _violations(self, event: Any) -> list[Violation]:
        size = body.oversized(event)
        if size is not None:
            return [Violation("(event)", "maxSize", f"event is {size} bytes; the limit is {body.MAX_EVENT_BYTES}")]
        return self._validator.violations(event)

    def process(self, events: list[Any], *, received_at: datetime) -> IntakeOutcome:
        received = _iso_ms(received_at)
        results: list[EventResult] = []
        accepted: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        for index, event in enumerate(events):
            event_id = _event_id(event)
            violations = self._violations(event)
            if violations:
                results.append(EventResult(index, event_id, Status.REJECTED, violations))
                rejected.append(_rejected_record(index, event, violations, received))
                continue
            accepted.append(_normalized(event, received))
            results.append(EventResult(index, event_id, Status.ACCEPTED))
        messages = batching.accepted_messages(accepted) + batching.rejected_message(rejected)
        return IntakeOutcome(results, messages)


def _normalized(event: dict[str, Any], received_at: str) -> dict[str, Any]:
    normalized = dict(event)
    normalized["privacy_level"] = event.get("privacy_level") or privacy.DEFAULT_PRIVACY_LEVEL
    normalized["retention_days"] = privacy.retention_days(normalized)
    normalized["received_at"] = received_at
    return normalized


def _rejected_record(index: int, event: Any, violations: list[Violation], received_at: str) -> dict[str, Any]:
    raw = orjson.dumps(event).decode()
    organization_id = event.get("organization_id") if isinstance(event, dict) else None
    return {
        "event_id": _event_id(event) or "",
        "organization_id": organization_id if isinstance(organization_id, str) else "",
        "index": index,
        "received_at": received_at,
        "reasons": [v.as_json() for v in violations],
        "raw": raw[:MAX_REJECTED_RAW_CHARS],
    }
