"""Events and domain events of erased users, dropped by the stream before
they are stored (lms_events/tombstones.py).

The gateway answers `erased` once an erasure is recorded; what it had
accepted before (still in Kafka), or accepted meanwhile, reaches the
stream, which drops it here and counts it in `intake_outcomes` with the
status `erased` (request id `stream:<batch>`, key id `stream`): such an
event appears there twice, `accepted` by the gateway and `erased` by the
stream, and is stored nowhere.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from lms_events.tombstones import TombstoneSet

OUTCOMES_TABLE = "intake_outcomes"
STREAM_KEY_ID = "stream"
ERASED = "erased"


class ErasedDrops:
    """What one micro-batch dropped, per (organization, event type)."""

    def __init__(self, tombstones: TombstoneSet) -> None:
        self.tombstones = tombstones
        self.counts: Counter[tuple[str, str]] = Counter()

    def events(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events of a message whose user is not erased."""
        erased = self.tombstones.erased
        kept = [event for event in events if not erased(event.get("organization_id"), event.get("user_id"))]
        if len(kept) != len(events):
            for event in events:
                if erased(event.get("organization_id"), event.get("user_id")):
                    self.counts[str(event.get("organization_id") or ""), str(event.get("event_type") or "")] += 1
        return kept

    def domain_event(self, event: dict[str, Any]) -> bool:
        """Whether a domain event is about an erased user (and so dropped)."""
        user_id = event.get("userId")
        if isinstance(user_id, str) and self.tombstones.erased(event.get("organizationId"), user_id):
            self.counts[str(event.get("organizationId") or ""), str(event.get("eventType") or "")] += 1
            return True
        return False

    def outcome_rows(self, token: str, version: int) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        return [
            {
                "received_at": now,
                "organization_id": organization_id,
                "key_id": STREAM_KEY_ID,
                "request_id": f"stream:{token[:32]}",
                "event_type": event_type,
                "status": ERASED,
                "events": count,
                "_version": version,
            }
            for (organization_id, event_type), count in sorted(self.counts.items())
        ]
