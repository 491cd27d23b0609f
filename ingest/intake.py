"""Decide the fate of every event in a request: the gateway's core logic.

No HTTP here: the handler calls `Intake.process` and tests call it
directly. Each event gets exactly one status, decided in this order:

    rejected     invalid (envelope, type, properties, time), or naming
                 another organization than the write key's
    sampled_out  its sampling class says drop (deterministic on event_id)
    no_consent   its user has not consented to its category
    rejected     over 32 KiB as it would be stored (privacy rules applied)
    expired      its own retention (retention_days from its time) ran out
                 before it arrived: storing it would only have the TTL
                 drop it unseen, so it is counted, not stored
    duplicate    its event_id was accepted within the dedup window
    accepted     published to `events.raw`

and over all of them, `erased`: its user (or, for an invalid event, the
user it names) was erased (lms_events/tombstones.py): nothing of theirs is
published or stored again, not even an invalid event's raw JSON. Known
once Redis answered the lookup sent at the start (ingest/erased.py).

Rejected events go with their reasons to `events.rejected`; the count of
every status per event type goes to `intake.outcomes`. Nothing posted
disappears without a trace.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from ingest import batching, body
from ingest.consent import ConsentRecord, ConsentStore
from ingest.dedup import Deduplicator
from ingest.erased import ErasedUsers
from ingest.events import Event, StoredEvent, encode
from ingest.privacy import PrivacyFilter
from ingest.publish import KafkaMessage
from ingest.sampling import Sampler
from ingest.timestamps import iso_ms
from ingest.timestamps import parse as parse_time
from ingest.validation import EventValidator, ValidEvent, Violation
from lms_events.write_keys import WriteKey

# What we keep of a rejected event's raw JSON for the bad-rows table.
MAX_REJECTED_RAW_CHARS = body.MAX_EVENT_BYTES
UNKNOWN_TYPE = "(unknown)"


class Status:
    """The seven fates of an event (plain strings: they are on the per-event hot path)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    SAMPLED_OUT = "sampled_out"
    NO_CONSENT = "no_consent"
    EXPIRED = "expired"
    ERASED = "erased"
    ALL = (ACCEPTED, REJECTED, DUPLICATE, SAMPLED_OUT, NO_CONSENT, EXPIRED, ERASED)


@dataclass(slots=True)
class IntakeOutcome:
    # One entry per posted event, by index: {"index", "event_id", "status"[, "errors"]}.
    results: list[dict[str, Any]]
    totals: dict[str, int]
    messages: list[KafkaMessage]
    organization_id: str
    # Event ids claimed for dedup, to release if Kafka refuses the messages.
    claimed: list[str] = field(default_factory=list)
    # Events per (event type, status), for the gateway's metrics.
    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"totals": self.totals, "results": self.results}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who posted, and from where (`truncated_ip`: see ingest.privacy.truncate_ip)."""

    key: WriteKey
    truncated_ip: str
    request_id: str


class _Tally:
    """The response's per-event results and each event's type, kept together so that
    no event gets a status without being counted; the counts are made once, at the end."""

    __slots__ = ("results", "types")

    def __init__(self, events: int) -> None:
        self.results: list[dict[str, Any] | None] = [None] * events
        self.types: list[str] = [UNKNOWN_TYPE] * events

    def record(
        self, index: int, event_id: str | None, status: str, event_type: str, errors: list[Violation] | None = None
    ) -> None:
        result: dict[str, Any] = {"index": index, "event_id": event_id, "status": status}
        if errors:
            result["errors"] = [e.as_json() for e in errors]
        self.results[index] = result
        self.types[index] = event_type

    def erase(self, indexes: set[int]) -> None:
        """The decided events among `indexes` become `erased` (the undecided are recorded so later)."""
        for index in indexes:
            result = self.results[index]
            if result is not None:
                self.results[index] = {"index": index, "event_id": result["event_id"], "status": Status.ERASED}

    def counts(self) -> Counter[tuple[str, str]]:
        """Events per (event type, status)."""
        return Counter(zip(self.types, map(itemgetter("status"), self.results), strict=True))  # type: ignore[arg-type]

    @staticmethod
    def totals(counts: Counter[tuple[str, str]]) -> dict[str, int]:
        totals = dict.fromkeys(Status.ALL, 0)
        for (_, status), count in counts.items():
            totals[status] += count
        return totals


def _event_id(event: Any) -> str | None:
    """The event id of an event as posted: an ingest.events.Event or any JSON value."""
    if type(event) is Event:
        return event.event_id
    if isinstance(event, dict) and isinstance(event.get("event_id"), str):
        return event["event_id"]
    return None


def _of_users(events: list[Any], checked: list[Any], users: set[str]) -> set[int]:
    """Indexes of the events naming one of `users` (valid or not)."""
    return {
        index
        for index, (event, valid) in enumerate(zip(events, checked, strict=True))
        if (valid.event.user_id if type(valid) is ValidEvent else _user_id(event)) in users
    }


def _user_id(event: Any) -> str | None:
    """The user id of an event as posted, when it names one."""
    user_id = event.user_id if type(event) is Event else event.get("user_id") if isinstance(event, dict) else None
    return user_id if isinstance(user_id, str) and user_id else None


_OTHER_ORGANIZATION = Violation(
    "organization_id", "organization", "the write key belongs to another organization; a key writes only for its own"
)


class Intake:
    def __init__(
        self,
        *,
        validator: EventValidator,
        sampler: Sampler,
        dedup: Deduplicator,
        consent: ConsentStore,
        privacy: PrivacyFilter,
        erased: ErasedUsers | None = None,
    ) -> None:
        self._validator = validator
        self._erased = erased
        self._sampler = sampler
        self._dedup = dedup
        self._consent = consent
        self._privacy = privacy

    async def process(self, events: list[Any], *, caller: Caller, received_at: datetime) -> IntakeOutcome:
        """`events`: ingest.events.Event values, or any JSON values when the body could not be typed."""
        organization_id = caller.key.organization_id
        received = iso_ms(received_at)
        window = self._validator.window(received_at)
        check, keep = self._validator.check, self._sampler.keep
        tally = _Tally(len(events))
        record = tally.record
        rejected: list[dict[str, Any]] = []
        checked = [check(event, window) for event in events]
        users = {v.event.user_id for v in checked if type(v) is ValidEvent and v.event.user_id}
        # An invalid event of an erased user is not kept as a bad row either (its raw names them).
        users.update(user for event, v in zip(events, checked, strict=True) if type(v) is not ValidEvent and (user := _user_id(event)))
        # Sent now, read after the dedup claim (ingest/erased.py); `erased` wins over the
        # statuses decided meanwhile.
        lookup = self._erased.ask(organization_id, users) if self._erased is not None else None
        consents = await self._consent.for_users(organization_id, users)
        # The size limit is on what would be stored, so it is measured on the
        # stored form, serialised once for both the check and the Kafka message.
        fitting: list[tuple[int, str, str, bytes, bytes]] = []  # index, event_id, type, partition key, stored JSON

        for index, valid in enumerate(checked):
            if type(valid) is not ValidEvent:
                event = events[index]
                record(index, _event_id(event), Status.REJECTED, UNKNOWN_TYPE, valid)  # type: ignore[arg-type]
                rejected.append(_rejected_record(index, event, valid, received, organization_id))  # type: ignore[arg-type]
                continue
            event = valid.event
            event_id = event.event_id
            if event.organization_id and event.organization_id != organization_id:
                record(index, event_id, Status.REJECTED, UNKNOWN_TYPE, [_OTHER_ORGANIZATION])
                rejected.append(_rejected_record(index, event, [_OTHER_ORGANIZATION], received, organization_id))
                continue
            event_type = valid.event_type
            if not keep(event_type, event_id):
                record(index, event_id, Status.SAMPLED_OUT, event_type.name)
                continue
            consent = consents.get(event.user_id or "")
            if consent is not None and not consent.allows(event_type.category):
                record(index, event_id, Status.NO_CONSENT, event_type.name)
                continue
            stored_form = stored_event(valid, privacy=self._privacy, consent=consent, caller=caller, received_at=received)
            stored = encode(stored_form)
            if len(stored) > body.MAX_EVENT_BYTES:
                too_large = [
                    Violation("(event)", "maxSize", f"event is {len(stored)} bytes; the limit is {body.MAX_EVENT_BYTES}")
                ]
                record(index, event_id, Status.REJECTED, event_type.name, too_large)
                rejected.append(_rejected_record(index, event, too_large, received, organization_id))
                continue
            # Only a late event can have outlived its retention (every cap is at least a day).
            if valid.late and _expired(valid.timestamp, stored_form.retention_days, received_at):
                record(index, event_id, Status.EXPIRED, event_type.name)
                continue
            fitting.append((index, event_id, event_type.name, batching.partition_key(stored_form), stored))

        firsts = await self._dedup.claim(organization_id, [event_id for _, event_id, _, _, _ in fitting])
        erased = await self._erased.answer(lookup) if lookup is not None else None
        gone = _of_users(events, checked, erased) if erased else ()
        if gone:
            tally.erase(gone)
            rejected = [bad for bad in rejected if bad["index"] not in gone]
        accepted: dict[bytes, list[bytes]] = {}
        claimed: list[str] = []
        for (index, event_id, type_name, partition_key, stored), first in zip(fitting, firsts, strict=True):
            if index in gone:  # claimed in vain: the claim expires, and the user's events stay `erased`
                record(index, event_id, Status.ERASED, type_name)
                continue
            if first:
                record(index, event_id, Status.ACCEPTED, type_name)
                claimed.append(event_id)
                accepted.setdefault(partition_key, []).append(stored)
            else:
                record(index, event_id, Status.DUPLICATE, type_name)

        counts = tally.counts()
        messages = (
            batching.accepted_messages(accepted)
            + batching.rejected_message(rejected)
            + batching.outcome_message(counts, caller.request_id, caller.key, received)
        )
        return IntakeOutcome(tally.results, tally.totals(counts), messages, organization_id, claimed, counts)  # type: ignore[arg-type]

    async def release(self, outcome: IntakeOutcome) -> None:
        """Kafka refused the outcome's messages: its accepted events were not stored."""
        await self._dedup.release(outcome.organization_id, outcome.claimed)


def _expired(timestamp: str, retention_days: int, received_at: datetime) -> bool:
    """Whether the TTL of the events tables (time + retention_days) has already passed."""
    moment = parse_time(timestamp)
    return moment is not None and moment + timedelta(days=retention_days) <= received_at


def stored_event(
    valid: ValidEvent, *, privacy: PrivacyFilter, consent: ConsentRecord | None, caller: Caller, received_at: str
) -> StoredEvent:
    """The stored form of an accepted event: canonical type and time, the write key's
    organization, the gateway's stamps, then the privacy rules."""
    event, event_type = valid.event, valid.event_type
    stored = StoredEvent(
        event.event_id,
        event_type.name,
        event_type.category,
        valid.timestamp,
        received_at,
        valid.late,
        caller.key.organization_id,
        event.user_id,
        event.session_id,
        event.privacy_level,
        event.retention_days,
        caller.truncated_ip,
        event.device_info,
        event.context,
        event.properties,
    )
    return privacy.apply(stored, event_type, consent)


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
        "raw": encode(event).decode()[:MAX_REJECTED_RAW_CHARS],
    }
