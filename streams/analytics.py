"""AnalyticsUpdated notifications (analytics seed, published events), coalesced.

After each sink batch the stream app tells the coalescer which rows it
stored; a timer drains it once per window into one `AnalyticsUpdated` per
entity (user, course, assessment) that changed, with the window's metrics.
A burst of thousands of events for one course becomes one message per
window, not thousands.

The pending window lives in memory on purpose: it is a notification about
rows already in ClickHouse, not data. A crash loses at most one window of
notifications, which consumers recover from by querying ClickHouse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.reference import Kind

ANALYTICS_EVENT_TYPE = "AnalyticsUpdated"
# Entities pending in one window before the window is drained early, so a
# burst over many entities cannot grow memory without bound.
MAX_PENDING_ENTITIES = 50_000
ASSESSMENT_ENTITY = "assessment"


@dataclass
class _Metrics:
    events: int = 0
    scored: int = 0
    score_sum: float = 0.0
    duration_ms: int = 0
    last_event_at: datetime | None = None
    event_types: set[str] = field(default_factory=set)

    def add(self, row: Mapping[str, Any]) -> None:
        self.events += 1
        if row.get("score") is not None:
            self.scored += 1
            self.score_sum += row["score"]
        self.duration_ms += row.get("duration_ms") or 0
        timestamp = row["timestamp"]
        if self.last_event_at is None or timestamp > self.last_event_at:
            self.last_event_at = timestamp
        self.event_types.add(row["event_type"])

    def as_json(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {
            "events": self.events,
            "eventTypes": sorted(self.event_types),
            "timeSpentMs": self.duration_ms,
        }
        if self.last_event_at is not None:
            metrics["lastEventAt"] = self.last_event_at.isoformat(timespec="milliseconds")
        if self.scored:
            metrics["scoredEvents"] = self.scored
            metrics["averageScore"] = round(self.score_sum / self.scored, 2)
        return metrics


def _assessment_id(event: Mapping[str, Any]) -> str:
    properties = event.get("properties") or {}
    context = event.get("context") or {}
    return str(properties.get("assessment_id") or context.get("assessment_id") or "")


class AnalyticsCoalescer:
    def __init__(self, max_pending: int = MAX_PENDING_ENTITIES) -> None:
        self.max_pending = max_pending
        self._pending: dict[tuple[str, str, str], _Metrics] = {}

    @property
    def full(self) -> bool:
        return len(self._pending) >= self.max_pending

    def observe(self, stored: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> None:
        """Count (row, event) pairs that ClickHouse now holds."""
        for row, event in stored:
            organization_id = row["organization_id"]
            for entity_type, entity_id in (
                (Kind.USER, row.get("user_id")),
                (Kind.COURSE, row.get("course_id")),
                (ASSESSMENT_ENTITY, _assessment_id(event)),
            ):
                if entity_id:
                    key = (str(entity_type), str(entity_id), organization_id)
                    metrics = self._pending.get(key)
                    if metrics is None:
                        metrics = self._pending[key] = _Metrics()
                    metrics.add(row)

    def drain(self) -> list[dict[str, Any]]:
        """One AnalyticsUpdated per entity changed since the last drain."""
        pending, self._pending = self._pending, {}
        updated_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        return [
            {
                "eventType": ANALYTICS_EVENT_TYPE,
                "entityType": entity_type,
                "entityId": entity_id,
                "organizationId": organization_id,
                "metrics": metrics.as_json(),
                "updatedAt": updated_at,
            }
            for (entity_type, entity_id, organization_id), metrics in pending.items()
        ]
