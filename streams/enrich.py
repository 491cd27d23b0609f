"""Enrichment: the denormalized fields of the LearningEvent seed, per event.

Fields the client sent win (properties or context: course_id, class_id,
enrollment_id, department_id, content_type, score, duration_ms); lookups
in the reference data fill the gaps. A reference that is needed but not
known yet leaves its fields empty and is named in `enrichment_missing`,
which `lms-events backfill` selects on once the reference data arrived.

Lookups are scoped by tenant: a reference entity of another organization
is treated as unknown, so a colliding id never leaks data across tenants.
The same function serves the stream (Faust tables) and backfill
(ClickHouse), so both enrich alike.

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


def _entity(lookup: ReferenceLookup, kind: Kind, key: str, organization_id: str) -> Mapping[str, Any] | None:
    """The entity, if it belongs to the event's organization."""
    entity = lookup.get(kind, key)
    if entity is None or entity.get("organization_id", organization_id) != organization_id:
        return None
    return entity


def _content(
    properties: Mapping[str, Any], context: Mapping[str, Any], lookup: ReferenceLookup, organization_id: str
) -> tuple[Mapping[str, Any] | None, bool]:
    """The content reference of the event, and whether the event names any content at all."""
    named = False
    for field, id_kind in CONTENT_ID_FIELDS:
        content_id = properties.get(field) or context.get(field)
        if content_id:
            named = True
            entity = _entity(lookup, Kind.CONTENT, content_key(id_kind, str(content_id)), organization_id)
            if entity is not None:
                return entity, True
    return None, named


_NOTHING: Mapping[str, Any] = {}


def enrichment(event: Mapping[str, Any], lookup: ReferenceLookup) -> dict[str, Any]:
    """The enrichment columns of one event (see sql/0001_events.sql)."""
    properties = event.get("properties") or _NOTHING
    context = event.get("context") or _NOTHING
    organization_id = event.get("organization_id") or ""
    missing: list[str] = []
    user_id = event.get("user_id") or ""

    user = _entity(lookup, Kind.USER, user_id, organization_id) if user_id else None
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
            _entity(lookup, Kind.ENROLLMENT, enrollment_by_course(user_id, course_id), organization_id) if course_id else None
        ) or (_entity(lookup, Kind.ENROLLMENT, enrollment_by_class(user_id, class_id), organization_id) if class_id else None)
        if enrollment is None:
            missing.append(Kind.ENROLLMENT)
        else:
            class_id = class_id or enrollment.get("class_id") or ""
            enrollment_id = enrollment_id or enrollment.get("enrollment_id") or ""
            course_id = course_id or enrollment.get("course_id") or ""

    content_type = _sent(properties, context, "content_type")
    if content_type not in CONTENT_TYPES:
        content_type = (content or _NOTHING).get("content_type") or _default_content_type(event["event_type"])

    return {
        "course_id": str(course_id),
        "class_id": str(class_id),
        "enrollment_id": str(enrollment_id),
        "department_id": str(_sent(properties, context, "department_id") or user.get("department_id") or ""),
        "user_role": user.get("role") or "",
        "content_type": content_type,
        "score": _number(properties.get("score")),
        "duration_ms": _duration(properties),
        "enrichment_missing": missing,
    }
