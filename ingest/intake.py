"""Decide the fate of every event in a request: the gateway's core logic.

No HTTP here: the handler calls `Intake.process` and tests call it
directly. Each event gets exactly one status, decided in this order:

    rejected     too large, invalid (envelope, type, properties, time),
                 or naming another organization than the write key's
    sampled_out  its sampling class says drop (deterministic on event_id)
    no_consent   its user has not consented to its category
    duplicate    its event_id was accepted within the dedup window
    accepted     privacy rules applied, published to `events.raw`

Rejected events go with their reasons to `events.rejected`; the count of
every status per event type goes to `intake.outcomes`. Nothing posted
disappears without a trace.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ingest import batching, body
from ingest.consent import ConsentRecord, ConsentStore
from ingest.dedup import Deduplicator
from ingest.privacy import PrivacyFilter
from ingest.publish import KafkaMessage
from ingest.sampling import Sampler
from ingest.validation import EventValidator, ValidEvent, Violation
from lms_events.write_keys import WriteKey

# What we keep of a rejected event's raw JSON for the bad-rows table.
MAX_REJECTED_RAW_CHARS = body.MAX_EVENT_BYTES
UNKNOWN_TYPE = "(unknown)"


class Status:
    """The five fates of an event (plain strings: they are on the per-event hot path)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    SAMPLED_OUT = "sampled_out"
    NO_CONSENT = "no_consent"
    ALL = (ACCEPTED, REJECTED, DUPLICATE, SAMPLED_OUT, NO_CONSENT)


@dataclass(slots=True)
class EventResult:
    index: int
    event_id: str | None
    status: str
    event_type: str = UNKNOWN_TYPE
    errors: list[Violation] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"index": self.index, "event_id": self.event_id, "status": self.status}
        if self.errors:
            result["errors"] = [e.as_json() for e in self.errors]
        return result


@dataclass(slots=True)
class IntakeOutcome:
    results: list[EventResult]
    messages: list[KafkaMessage]
    organization_id: str
    # Event ids claimed for dedup, to release if Kafka refuses the messages.
    claimed: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.totals = dict.fromkeys(Status.ALL, 0)
        for result in self.results:
            self.totals[result.status] += 1

    def as_json(self) -> dict[str, Any]:
        return {"totals": self.totals, "results": [r.as_json() for r in self.results]}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who posted, and from where (`truncated_ip`: see ingest.privacy.truncate_ip)."""

    key: WriteKey
    truncated_ip: str
    request_id: str


@dataclass(slots=True)
class _Candidate:
    index: int
    event: dict[str, Any]
    valid: ValidEvent
    consent: ConsentRecord | None = None


def _event_id(event: Any) -> str | None:
    if isinstance(event, dict) and isinstance(event.get("event_id"), str):
        return event["event_id"]
    return None


def _is_canonical_time(value: str) -> bool:
    """Already `YYYY-MM-DDTHH:MM:SS.mmmZ` (what most clients send): no need to re-format."""
    return len(value) == 24 and value[19] == "." and value[23] == "Z"


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Intake:
    def __init__(
        self,
        *,
        validator: EventValidator,
        sampler: Sampler,
        dedup: Deduplicator,
        consent: ConsentStore,
        privacy: PrivacyFilter,
    ) -> None:
        self._validator = validator
        self._sampler = sampler
        self._dedup = dedup
        self._consent = consent
        self._privacy = privacy

    def _check(self, event: Any, caller: Caller, received_at: datetime) -> ValidEvent | list[Violation]:
        size = body.oversized(event)
        if size is not None:
            return [Violation("(event)", "maxSize", f"event is {size} bytes; the limit is {body.MAX_EVENT_BYTES}")]
        checked = self._validator.check(event, received_at=received_at)
        if isinstance(checked, ValidEvent):
            organization_id = event.get("organization_id")
            if organization_id and organization_id != caller.key.organization_id:
                return [
                    Violation(
                        "organization_id",
                        "organization",
                        "the write key belongs to another organization; a key writes only for its own",
                    )
                ]
        return checked

    async def process(self, events: list[Any], *, caller: Caller, received_at: datetime) -> IntakeOutcome:
        organization_id = caller.key.organization_id
        received = iso_ms(received_at)
        results: list[EventResult | None] = [None] * len(events)
        rejected: list[dict[str, Any]] = []
        candidates: list[_Candidate] = []

        for index, event in enumerate(events):
            checked = self._check(event, caller, received_at)
            if not isinstance(checked, ValidEvent):
                results[index] = EventResult(index, _event_id(event), Status.REJECTED, errors=checked)
                rejected.append(_rejected_record(index, event, checked, received, organization_id))
                continue
            if not self._sampler.keep(checked.event_type, event["event_id"]):
                results[index] = EventResult(index, event["event_id"], Status.SAMPLED_OUT, checked.event_type.name)
                continue
            candidates.append(_Candidate(index, event, checked))

        consents = await self._consent.get_many(
            {(organization_id, c.event["user_id"]) for c in candidates if c.event.get("user_id")}
        )
        consenting = []
        for c in candidates:
            c.consent = consents.get((organization_id, c.event.get("user_id") or ""))
            if c.consent is not None and not c.consent.allows(c.valid.event_type.category):
                results[c.index] = EventResult(c.index, c.event["event_id"], Status.NO_CONSENT, c.valid.event_type.name)
            else:
                consenting.append(c)

        event_ids = [c.event["event_id"] for c in consenting]
        firsts = await self._dedup.claim(organization_id, event_ids)
        accepted: list[dict[str, Any]] = []
        claimed: list[str] = []
        for c, event_id, first in zip(consenting, event_ids, firsts, strict=True):
            status = Status.ACCEPTED if first else Status.DUPLICATE
            results[c.index] = EventResult(c.index, event_id, status, c.valid.event_type.name)
            if first:
                claimed.append(event_id)
                accepted.append(self._normalized(c, caller, received))

        final = [r for r in results if r is not None]
        messages = (
            batching.accepted_messages(accepted)
            + batching.rejected_message(rejected)
            + batching.outcome_message(_outcome_counts(final), caller.request_id, caller.key, received)
        )
        return IntakeOutcome(final, messages, organization_id, claimed)

    async def release(self, outcome: IntakeOutcome) -> None:
        """Kafka refused the outcome's messages: its accepted events were not stored."""
        await self._dedup.release(outcome.organization_id, outcome.claimed)

    def _normalized(self, candidate: _Candidate, caller: Caller, received_at: str) -> dict[str, Any]:
        event, valid = candidate.event, candidate.valid
        normalized = dict(event)
        normalized["event_type"] = valid.event_type.name
        normalized["event_category"] = valid.event_type.category
        if not _is_canonical_time(event["timestamp"]):
            normalized["timestamp"] = iso_ms(valid.timestamp)
        normalized["organization_id"] = caller.key.organization_id
        normalized["received_at"] = received_at
        normalized["is_late"] = valid.late
        return self._privacy.apply(normalized, valid.event_type, candidate.consent, caller.truncated_ip)


def _outcome_counts(results: list[EventResult]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for result in results:
        counts[(result.event_type, result.status)] += 1
    return counts


def _rejected_record(
    index: int, event: Any, violations: list[Violation], received_at: str, organization_id: str
) -> dict[str, Any]:
    return {
        "event_id": _event_id(event) or "",
        "organization_id": organization_id,
        "index": index,
        "received_at": received_at,
        "source": "gateway",
        "reasons": [v.as_json() for v in violations],
        "raw": orjson.dumps(event).decode()[:MAX_REJECTED_RAW_CHARS],
    }
