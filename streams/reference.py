"""Reference data from domain events: what enrichment looks up.

A domain event (camelCase, `eventType` discriminator, see
`schemas/domain_events.schema.json`) becomes zero or more
`ReferenceUpdate`s, each a partial set of attributes for one entity of a
`Kind`. Updates merge into the entity field by field (later wins), so
replaying an event is harmless and partial events (UserUpdated,
CoursePublished) only change what they carry.

Every entity belongs to one organization and is identified by
(kind, organization, key) (`EntityId`): organizations share id spaces (a
game registry, user ids of one platform), so one organization's entity
must never replace or answer for another's. A domain event without
`organizationId` therefore has no entity to update and is refused.

Entities and their keys within an organization:
- user:       user id -> department, role, age band, consent
- content:    `content/<id>`, `game/<id>`, `stage/<id>`, `assessment/<id>`
              -> course, module, content type
- enrollment: `<user>/course/<course>` and `<user>/class/<class>`
              -> class, enrollment, course
- course:     course id -> title, category, published
- class:      class id -> course, department, teacher ids
Each also carries its `organization_id`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, NamedTuple, Protocol

import jsonschema_rs
import orjson

import schemas

DOMAIN_SCHEMA = "domain_events.schema.json"


class Kind(StrEnum):
    USER = "user"
    CONTENT = "content"
    ENROLLMENT = "enrollment"
    COURSE = "course"
    CLASS = "class"


class PoisonDomainEvent(ValueError):
    """A domain-event message that cannot be understood (not JSON, unknown type, invalid)."""


class EntityId(NamedTuple):
    kind: Kind
    organization_id: str
    key: str


@dataclass(frozen=True)
class ReferenceUpdate:
    kind: Kind
    key: str
    organization_id: str
    attributes: dict[str, Any]

    @property
    def entity(self) -> EntityId:
        return EntityId(self.kind, self.organization_id, self.key)


class ReferenceLookup(Protocol):
    """Read access to reference entities: Faust tables in the stream, ClickHouse in backfill."""

    def get(self, kind: Kind, organization_id: str, key: str) -> Mapping[str, Any] | None: ...


def content_key(id_kind: str, value: str) -> str:
    return f"{id_kind}/{value}"


def enrollment_by_course(user_id: str, course_id: str) -> str:
    return f"{user_id}/course/{course_id}"


def enrollment_by_class(user_id: str, class_id: str) -> str:
    return f"{user_id}/class/{class_id}"


def merge(current: Mapping[str, Any] | None, update: ReferenceUpdate) -> dict[str, Any]:
    merged = dict(current or {})
    merged.update(update.attributes)
    merged["organization_id"] = update.organization_id
    return merged


@cache
def _validators() -> dict[str, Any]:
    definitions = schemas.load(DOMAIN_SCHEMA)["$defs"]
    return {
        # Formats too, as the gateway does: a fact's time must be a time.
        name: jsonschema_rs.validator_for({**definition, "$defs": definitions}, validate_formats=True)
        for name, definition in definitions.items()
        if "x-topic" in definition
    }


def topic_and_key(event: Mapping[str, Any]) -> tuple[str, str]:
    """The topic a domain event belongs on and its message key (the entity id)."""
    definition = schemas.load(DOMAIN_SCHEMA)["$defs"][event["eventType"]]
    return definition["x-topic"], str(event[definition["x-key"]])


def validate(event: Any) -> dict[str, Any]:
    """The event if it is a known, valid domain event, else PoisonDomainEvent with the reason."""
    if not isinstance(event, dict):
        raise PoisonDomainEvent("a domain event is a JSON object")
    validator = _validators().get(event_type) if isinstance(event_type := event.get("eventType"), str) else None
    if validator is None:
        raise PoisonDomainEvent(f"unknown eventType {event.get('eventType')!r}")
    errors = [f"{'/'.join(map(str, e.instance_path)) or '(event)'}: {e.message}" for e in validator.iter_errors(event)]
    if not event.get("organizationId"):
        # The gateway stamps it; producers writing to the topics directly must send it.
        errors.append("organizationId: required (reference data and facts are kept per organization)")
    if errors:
        raise PoisonDomainEvent("; ".join(errors[:5]))
    return event


def decode(value: bytes | None) -> dict[str, Any]:
    """A domain event from a Kafka message value, or PoisonDomainEvent."""
    try:
        return validate(orjson.loads(value or b""))
    except orjson.JSONDecodeError as exc:
        raise PoisonDomainEvent(f"not JSON: {exc}") from None


def _present(**attributes: Any) -> dict[str, Any]:
    return {name: value for name, value in attributes.items() if value is not None}


def _content_updates(event: Mapping[str, Any], organization_id: str) -> Iterable[ReferenceUpdate]:
    for item in event.get("contents") or ():
        attributes = _present(course_id=event["courseId"], module_id=item.get("moduleId"), content_type=item.get("contentType"))
        for field, id_kind in (("contentId", "content"), ("gameId", "game"), ("stageId", "stage")):
            if item.get(field):
                yield ReferenceUpdate(Kind.CONTENT, content_key(id_kind, item[field]), organization_id, attributes)


def updates_from(event: Mapping[str, Any]) -> list[ReferenceUpdate]:
    """The reference updates a valid domain event implies (none for pure activity events)."""
    event_type = event["eventType"]
    organization_id = event["organizationId"]
    if event_type in ("UserCreated", "UserUpdated"):
        attributes = _present(
            department_id=event.get("departmentId"),
            role=event.get("role"),
            age_band=event.get("ageBand"),
            consent=event.get("consent"),
        )
        return [ReferenceUpdate(Kind.USER, event["userId"], organization_id, attributes)]
    if event_type == "UserEnrolled":
        user_id, course_id, class_id = event["userId"], event["courseId"], event.get("classId")
        attributes = _present(course_id=course_id, class_id=class_id, enrollment_id=event.get("enrollmentId"))
        updates = [ReferenceUpdate(Kind.ENROLLMENT, enrollment_by_course(user_id, course_id), organization_id, attributes)]
        if class_id:
            updates.append(ReferenceUpdate(Kind.ENROLLMENT, enrollment_by_class(user_id, class_id), organization_id, attributes))
        return updates
    if event_type == "CourseCreated":
        attributes = _present(title=event.get("title"), category=event.get("category"), published=False)
        return [ReferenceUpdate(Kind.COURSE, event["courseId"], organization_id, attributes), *_content_updates(event, organization_id)]
    if event_type == "CoursePublished":
        return [ReferenceUpdate(Kind.COURSE, event["courseId"], organization_id, {"published": True})]
    if event_type == "CourseContentsUpdated":
        return list(_content_updates(event, organization_id))
    if event_type in ("ClassCreated", "ClassUpdated"):
        attributes = _present(
            course_id=event.get("courseId"), department_id=event.get("departmentId"), teacher_ids=event.get("teacherIds")
        )
        return [ReferenceUpdate(Kind.CLASS, event["classId"], organization_id, attributes)]
    if event_type in ("AssessmentStarted", "AssessmentCompleted"):
        attributes = {"course_id": event["courseId"], "content_type": "quiz"}
        return [ReferenceUpdate(Kind.CONTENT, content_key("assessment", event["assessmentId"]), organization_id, attributes)]
    return []
