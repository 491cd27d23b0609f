"""AnalyticsUpdated notifications (analytics seed, published events), coalesced.

After each sink batch the stream app hands the coalescer the Arrow batch
it stored, which it aggregates per entity; a timer drains it once per
window into one `AnalyticsUpdated` per entity (user, course, assessment)
that changed, with the window's metrics.
A burst of thousands of events for one course becomes one message per
window, not thousands.

The pending window lives in memory on purpose: it is a notification about
rows already in ClickHouse, not data. A crash loses at most one window of
notifications, which consumers recover from by querying ClickHouse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from lms_events.topics import ANALYTICS_UPDATED
from streams.reference import Kind

ANALYTICS_EVENT_TYPE = ANALYTICS_UPDATED
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
    facts: int = 0
    fact_types: set[str] = field(default_factory=set)

    def add(self, counted: Mapping[str, Any]) -> None:
        """Add one group of a batch's rows: its BATCH_AGGREGATES, by their column names."""
        self.events += counted["count_all"]
        self.scored += counted["score_count"]
        self.score_sum += counted["score_sum"] or 0.0
        self.duration_ms += counted["duration_ms_sum"] or 0
        last = counted["timestamp_max"]
        if self.last_event_at is None or last > self.last_event_at:
            self.last_event_at = last
        self.event_types.update(counted["event_type_distinct"])

    def as_json(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {
            "events": self.events,
            "eventTypes": sorted(self.event_types),
            "timeSpentMs": self.duration_ms,
        }
        if self.last_event_at is not None:
            metrics["lastEventAt"] = self.last_event_at.isoformat(timespec="milliseconds")
        if self.facts:
            metrics["domainFacts"] = self.facts
            metrics["domainFactTypes"] = sorted(self.fact_types)
        if self.scored:
            metrics["scoredEvents"] = self.scored
            metrics["averageScore"] = round(self.score_sum / self.scored, 2)
        return metrics


# What a window reports per entity, aggregated per batch in Arrow rather than per row in Python.
BATCH_AGGREGATES = [
    ([], "count_all"),
    ("score", "count"),
    ("score", "sum"),
    ("duration_ms", "sum"),
    ("timestamp", "max"),
    ("event_type", "distinct"),
]
# The entities an event counts for, and the batch column naming each; an empty id counts for none.
ENTITY_COLUMNS = ((str(Kind.USER), "user_id"), (str(Kind.COURSE), "course_id"), (ASSESSMENT_ENTITY, "assessment_id"))
# One grouping per batch by every entity at once (few groups: a batch holds few learners and
# courses), then each group adds to its entities; cheaper than a grouping per entity.
GROUP_COLUMNS = ["organization_id", *(column for _, column in ENTITY_COLUMNS)]


class AnalyticsCoalescer:
    def __init__(self, max_pending: int = MAX_PENDING_ENTITIES) -> None:
        self.max_pending = max_pending
        self._pending: dict[tuple[str, str, str], _Metrics] = {}

    @property
    def full(self) -> bool:
        return len(self._pending) >= self.max_pending

    def observe(self, stored: pa.Table) -> None:
        """Count a batch of event rows that ClickHouse now holds (streams/event_batch.py columns)."""
        grouped = stored.group_by(GROUP_COLUMNS, use_threads=False).aggregate(BATCH_AGGREGATES)
        for counted in grouped.to_pylist():
            for entity_type, column in ENTITY_COLUMNS:
                if entity_id := counted[column]:
                    self._metrics(entity_type, entity_id, counted["organization_id"]).add(counted)

    def observe_facts(self, fact_rows: list[dict[str, Any]]) -> None:
        """Count domain facts ClickHouse now holds (streams/facts.py rows): enrollments,
        completions and attempts change the same figures events do."""
        for fact in fact_rows:
            for entity_type, column in ENTITY_COLUMNS:
                if entity_id := fact.get(column):
                    metrics = self._metrics(entity_type, entity_id, fact["organization_id"])
                    metrics.facts += 1
                    metrics.fact_types.add(fact["event_type"])

    def _metrics(self, entity_type: str, entity_id: str, organization_id: str) -> _Metrics:
        key = (entity_type, entity_id, organization_id)
        metrics = self._pending.get(key)
        if metrics is None:
            metrics = self._pending[key] = _Metrics()
        return metrics

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
