"""The gateway's answers as msgspec Structs, for the OpenAPI document.

The handlers build these answers as plain dicts on the hot path (a
conversion per request would cost the intake its throughput); the
structs say what those dicts are, and tests/test_openapi.py checks real
answers of the running gateway against the schemas derived from them.
Field names are the gateway's own snake_case.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ingest.intake import Status

EventStatus = Literal[Status.ALL]  # type: ignore[valid-type]
Count = Annotated[int, Meta(ge=0)]


class Answer(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every gateway answer: no field the model does not name."""


class Violation(Answer):
    """One broken rule."""

    field: Annotated[str, Meta(description="dotted path into the event, e.g. properties.score")]
    rule: Annotated[str, Meta(description="the JSON Schema keyword (or gateway rule) broken")]
    message: str


class IntakeTotals(Answer):
    accepted: Count
    rejected: Count
    duplicate: Count
    sampled_out: Count
    no_consent: Count
    expired: Count
    erased: Count


class IntakeResult(Answer, omit_defaults=True):
    """The fate of one posted event, by its index in the request."""

    index: Count
    event_id: str | None
    status: EventStatus
    errors: Annotated[list[Violation], Meta(description="present when rejected")] = []


class IntakeAnswer(Answer):
    """`POST /v1/batch`, `POST /v1/events`: every event's status, in request order, and the totals."""

    totals: IntakeTotals
    results: list[IntakeResult]


class DomainTotals(Answer):
    accepted: Count
    rejected: Count
    erased: Count


class DomainResult(Answer, omit_defaults=True):
    """One domain event: accepted (with its type and topic), rejected (with its errors), or
    erased (it names an erased user: neither published nor stored)."""

    index: Count
    status: Literal["accepted", "rejected", "erased"]
    event_type: Annotated[str | None, Meta(description="present when accepted or erased")] = None
    event_id: Annotated[
        str | None,
        Meta(description="the fact's identity: the producer's eventId, else a digest of its content; present when accepted"),
    ] = None
    topic: Annotated[str | None, Meta(description="the Kafka topic it went to; present when accepted")] = None
    errors: Annotated[list[Violation], Meta(description="present when rejected")] = []


class DomainAnswer(Answer):
    """`POST /v1/domain-events`."""

    totals: DomainTotals
    results: list[DomainResult]


class ConsentRecord(Answer):
    organization_id: str
    user_id: str
    categories: dict[str, bool]
    age_band: str | None
    parental_consent: bool | None
    updated_at: Annotated[str, Meta(extra_json_schema={"format": "date-time"})]


class ConsentAnswer(Answer):
    """`PUT /v1/consent/{user_id}`: the record as stored."""

    consent: ConsentRecord


class Category(Answer):
    description: str


class EventTypeSummary(Answer):
    category: str
    group: str
    sampling: str
    href: Annotated[str, Meta(description="where this type's property schema is served")]


JsonSchema = Annotated[dict[str, Any], Meta(description="a JSON Schema (draft 2020-12)")]


class SchemasAnswer(Answer):
    """`GET /v1/schemas`: the envelope, the taxonomy and where each type's schema is."""

    envelope: JsonSchema
    categories: dict[str, Category]
    sampling_classes: Annotated[dict[str, str], Meta(description="sampling class -> what it keeps")]
    event_types: dict[str, EventTypeSummary]
    naming: str


class EventSchemaAnswer(Answer):
    """`GET /v1/schemas/{event_type}`: one type, with the envelope and its property schema."""

    event_type: Annotated[str, Meta(description="the stored (snake_case) name, whatever spelling was asked for")]
    category: str
    group: str
    sampling: str
    envelope: JsonSchema
    properties: JsonSchema


class HealthAnswer(Answer):
    """`GET /health`: 200 when every component answers, else 503 with the same body.
    Under `up`: also 503 `starting` until its stream worker is ready (`stream_worker`)."""

    status: Literal["ok", "degraded", "starting"]
    components: dict[str, Literal["ok", "unavailable", "starting"]]
    sink_last_success: Annotated[
        str | None, Meta(description="under `up`: when a sink last stored a batch in ClickHouse (ISO 8601, UTC)")
    ] = None
    consumer_lag: Annotated[
        Count | None,
        Meta(description="messages of the pipeline topics the stream app has not committed yet; null when unreadable"),
    ] = None


ANSWERS: tuple[type[Answer], ...] = (
    IntakeAnswer,
    DomainAnswer,
    ConsentAnswer,
    SchemasAnswer,
    EventSchemaAnswer,
    HealthAnswer,
)
