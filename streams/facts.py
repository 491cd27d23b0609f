"""Domain facts: one `domain_facts` row per domain event (sql/0014_domain_facts.sql).

Enrollments, completions, module completions and assessment attempts are
counted from these rows, so each is the event itself, not merged state
(that is the reference data's job). The row's identity, `fact_id`, is
the message's `eventId`, or for a message of a gateway that set none the
digest of its content (lms_events/domain_identity.py): a replayed or
re-posted event is the same row of the ReplacingMergeTree.

A column is filled only from the field its event type's schema defines
(extra fields are allowed in domain events and may hold anything); for
the other types it stays '' / NULL / [].
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

import schemas
from lms_events.domain_identity import event_id_as_published
from streams.reference import DOMAIN_SCHEMA, PoisonDomainEvent

FACTS_TABLE = "domain_facts"

# The fact's own time (METRICS.md, Sources); types not listed are timed by occurredAt.
OWN_TIME_FIELDS = {
    "UserEnrolled": "enrolledAt",
    "UserCompletedCourse": "completedAt",
    "ModuleCompleted": "completedAt",
    "AssessmentStarted": "startedAt",
    "AssessmentCompleted": "completedAt",
    "CoursePublished": "publishedAt",
}
# String columns copied from the field of the same meaning.
CARRIED_STRINGS = {
    "user_id": "userId",
    "course_id": "courseId",
    "class_id": "classId",
    "module_id": "moduleId",
    "assessment_id": "assessmentId",
    "department_id": "departmentId",
    "role": "role",
}
# `score`: finalScore of UserCompletedCourse, score of the others that have one.
SCORE_FIELDS = ("finalScore", "score")


@cache
def _fields(event_type: str) -> frozenset[str]:
    """The fields the schema defines for a domain event type."""
    return frozenset(schemas.load(DOMAIN_SCHEMA)["$defs"][event_type]["properties"])


def _time(value: str, field: str) -> datetime:
    try:
        # RFC 3339 allows lower-case "t" and "z"; Python's parser does not.
        moment = datetime.fromisoformat(value.upper())
    except ValueError:
        # The schema's date-time admits a leap second, which no clock here can hold.
        raise PoisonDomainEvent(f"{field}: {value!r} is not a storable time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _occurred_at(event: Mapping[str, Any], published_at: datetime) -> datetime:
    """The fact's own time, else occurredAt, else (a producer that wrote to the topic
    directly and sent neither) when Kafka took the message."""
    for field in (OWN_TIME_FIELDS.get(event["eventType"]), "occurredAt"):
        if field and event.get(field):
            return _time(event[field], field)
    return published_at


def _module_ids(contents: Iterable[Mapping[str, Any]]) -> list[str]:
    """The moduleIds of a course's contents, in order of first appearance, once each."""
    return list(dict.fromkeys(item["moduleId"] for item in contents if item.get("moduleId")))


def fact_row(event: Mapping[str, Any], payload: bytes, published_at: datetime, version: int) -> dict[str, Any]:
    """The `domain_facts` row of a valid domain event; `payload` is the message as published.

    Raises PoisonDomainEvent for a time no column can hold."""
    fields = _fields(event["eventType"])

    def carried(field: str) -> Any:
        return event.get(field) if field in fields else None

    score_field = next((field for field in SCORE_FIELDS if field in fields), None)
    return {
        "organization_id": event["organizationId"],
        "event_type": event["eventType"],
        "fact_id": event_id_as_published(event),
        "occurred_at": _occurred_at(event, published_at),
        **{column: carried(field) or "" for column, field in CARRIED_STRINGS.items()},
        "score": carried(score_field) if score_field else None,
        "passed": carried("passed"),
        "time_spent_s": carried("timeSpent"),
        "module_ids": _module_ids(carried("contents") or ()),
        "teacher_ids": list(carried("teacherIds") or ()),
        "payload": payload.decode(),
        "_version": version,
    }
