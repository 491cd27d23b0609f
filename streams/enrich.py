"""Enrichment: the denormalized fields of the LearningEvent seed.

Fields the client sent win (properties or context: course_id, class_id,
enrollment_id, department_id, content_type, score, duration_ms); lookups
in the reference data fill the gaps. A reference that is needed but not
known yet leaves its fields empty and is named in `enrichment_missing`,
which `lms-events backfill` selects on once the reference data arrived.

Lookups are scoped by tenant: reference entities are keyed by
(organization, id), so an event sees only its own organization's and a
colliding id never leaks data across tenants. The same function serves
the stream (Faust tables) and backfill (ClickHouse), so both enrich alike.

The period markers of the seed (event_date, ISO 8601 event_week such as
`2026-W03`, event_month) are derived by ClickHouse from the timestamp (the
DEFAULT expressions in sql/0001_events.sql, toISOYear/toISOWeek, which
handle year boundaries: 2021-01-03 is in 2020-W53): columnar in C++, and
one definition for stream, backfill and any other writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import schemas
from streams.reference import (
    Kind,
    ReferenceLookup,
    content_key,
    enrollment_by_class,
    enrollment_by_course,
)

CONTENT_TYPES = frozenset({"scorm", "video", "document", "quiz", "assignment", "game"})
# Content type implied by the event's taxonomy group when neither the client
# nor the content reference says: a game stage is a game, an assignment an assignment.
GROUP_CONTENT_TYPES = {"gameplay": "game", "assignments": "assignment"}
# Properties that carry an event's duration, first found wins (seed 004 names).
DURATION_PROPERTIES = ("duration_ms", "load_time_ms", "response_time_ms", "time_spent_ms")
# Ids in properties/context that name a piece of content, most specific first.
CONTENT_ID_FIELDS = (("content_id", "content"), ("stage_id", "stage"), ("game_id", "game"), ("assessment_id", "assessment"))


@lru_cache(maxsize=1024)
def taxonomy_entry(event_type: str) -> Mapping[str, Any]:
    return schemas.load("taxonomy.json")["event_types"].get(event_type) or {}


def category_of(event: Mapping[str, Any]) -> str:
    """The gateway's `event_category`, else the taxonomy's (gateways before it stamped one)."""
    return event.get("event_category") or taxonomy_entry(event["event_type"]).get("category", "")


def _sent(properties: Mapping[str, Any], context: Mapping[str, Any], name: str) -> Any:
    """What the client sent for `name` (properties first, then context), or None."""
    return properties.get(name) or context.get(name) or None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _duration(properties: Mapping[str, Any]) -> int | None:
    for name in DURATION_PROPERTIES:
        value = _number(properties.get(name))
        if value is not None and value >= 0:
            return int(value)
    return None


@lru_cache(maxsize=1024)
def _default_content_type(event_type: str) -> str:
    return GROUP_CONTENT_TYPES.get(taxonomy_entry(event_type).get("group", ""), "")


def _content(
    properties: Mapping[str, Any], context: Mapping[str, Any], lookup: ReferenceLookup, organization_id: str
) -> tuple[Mapping[str, Any] | None, bool]:
    """The content reference of the event, and whether the event names any content at all."""
    named = False
    for field, id_kind in CONTENT_ID_FIELDS:
        content_id = properties.get(field) or context.get(field)
        if content_id:
            named = True
            entity = lookup.get(Kind.CONTENT, organization_id, content_key(id_kind, str(content_id)))
            if entity is not None:
                return entity, True
    return None, named


_NOTHING: Mapping[str, Any] = {}
# What the reference fields of an event depend on besides its organization,
# user and type: the ids and values a client may send in properties or context.
REFERENCE_INPUTS = (*(field for field, _ in CONTENT_ID_FIELDS), "course_id", "class_id", "enrollment_id", "department_id", "content_type")
# The columns `reference_fields` returns, in its order.
REFERENCE_COLUMNS = ("course_id", "class_id", "enrollment_id", "department_id", "user_role", "content_type", "enrichment_missing")

ReferenceFields = tuple[str, str, str, str, str, str, list[str]]


def reference_fields(event: Mapping[str, Any], lookup: ReferenceLookup) -> ReferenceFields:
    """The enrichment columns of one event that come from reference data (REFERENCE_COLUMNS)."""
    properties = event.get("properties") or _NOTHING
    context = event.get("context") or _NOTHING
    organization_id = event.get("organization_id") or ""
    missing: list[str] = []
    user_id = event.get("user_id") or ""

    user = lookup.get(Kind.USER, organization_id, user_id) if user_id else None
    if user is None:
        user = _NOTHING
        if user_id:
            missing.append(Kind.USER)

    content, names_content = _content(properties, context, lookup, organization_id)
    sent_course_id = _sent(properties, context, "course_id")
    course_id = sent_course_id or (content or _NOTHING).get("course_id") or ""
    if content is None and names_content and not sent_course_id:
        missing.append(Kind.CONTENT)

    class_id = _sent(properties, context, "class_id") or ""
    enrollment_id = _sent(properties, context, "enrollment_id") or ""
    if user_id and (course_id or class_id) and not (class_id and enrollment_id):
        enrollment = (
            lookup.get(Kind.ENROLLMENT, organization_id, enrollment_by_course(user_id, course_id)) if course_id else None
        ) or (lookup.get(Kind.ENROLLMENT, organization_id, enrollment_by_class(user_id, class_id)) if class_id else None)
        if enrollment is None:
            missing.append(Kind.ENROLLMENT)
        else:
            class_id = class_id or enrollment.get("class_id") or ""
            enrollment_id = enrollment_id or enrollment.get("enrollment_id") or ""
            course_id = course_id or enrollment.get("course_id") or ""

    content_type = _sent(properties, context, "content_type")
    if content_type not in CONTENT_TYPES:
        content_type = (content or _NOTHING).get("content_type") or _default_content_type(event["event_type"])

    return (
        str(course_id),
        str(class_id),
        str(enrollment_id),
        str(_sent(properties, context, "department_id") or user.get("department_id") or ""),
        user.get("role") or "",
        content_type,
        missing,
    )


def _reference_key(event: Mapping[str, Any]) -> tuple[Any, ...]:
    """Everything `reference_fields` reads from an event: equal keys, equal fields."""
    properties = event.get("properties") or _NOTHING
    context = event.get("context") or _NOTHING
    return (
        event.get("organization_id"),
        event.get("user_id"),
        event["event_type"],
        tuple(map(properties.get, REFERENCE_INPUTS)),
        tuple(map(context.get, REFERENCE_INPUTS)),
    )


class Enricher:
    """Enrichment of one micro-batch against a consistent view of the reference data.

    A batch holds many events of few learners and contents, so events that
    name the same references get their reference fields looked up once.
    Live only as long as the batch: the reference data may change between
    batches.
    """

    def __init__(self, lookup: ReferenceLookup) -> None:
        self.lookup = lookup
        self._known: dict[tuple[Any, ...], ReferenceFields] = {}

    def reference_fields(self, event: Mapping[str, Any]) -> ReferenceFields:
        key = _reference_key(event)
        try:
            fields = self._known.get(key)
        except TypeError:  # a client sent an unhashable value (a list, an object) where an id goes
            return reference_fields(event, self.lookup)
        if fields is None:
            fields = self._known[key] = reference_fields(event, self.lookup)
        return fields

    def columns(self, events: list[Mapping[str, Any]]) -> dict[str, list[Any]]:
        """The enrichment columns (see sql/0001_events.sql) of `events`, in order."""
        fields = [self.reference_fields(event) for event in events]
        columns = {name: [row[position] for row in fields] for position, name in enumerate(REFERENCE_COLUMNS)}
        measured = [event.get("properties") or _NOTHING for event in events]
        columns["score"] = [_number(properties.get("score")) for properties in measured]
        columns["duration_ms"] = [_duration(properties) for properties in measured]
        return columns
