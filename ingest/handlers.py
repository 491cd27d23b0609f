"""HTTP handlers: authenticate -> parse -> decide per event -> publish -> respond.

The logic lives in `ingest.body`, `ingest.intake` and friends; handlers
only wire a request to it. Errors become responses in `error_middleware`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
import structlog
from aiohttp import web

import schemas
from ingest import body, domain_events
from ingest.consent import ConsentRecord
from ingest.events import TOO_DEEP
from ingest.intake import Caller
from ingest.keys import CONSENT, ERASED, INTAKE, KEYRING, PUBLISHER, RATE_LIMITER, READ_SECRET, SETTINGS, STORE
from ingest.privacy import truncate_ip
from ingest.publish import KafkaMessage
from ingest.taxonomy import event_types, lookup
from ingest.timestamps import iso_ms
from ingest.validation import SchemaCheck, property_schema
from lms_events import metrics
from lms_events.audit import AuditEntry, write_now
from lms_events.request_context import current_request_id
from lms_events.tokens import bearer_token, verify
from lms_events.errors import BadRequest, BrokerUnavailable, ClientError, Gone, NotFound, RateLimited
from lms_events.topics import CONSENT_RECORDS
from lms_events.write_keys import WriteKey

log = structlog.get_logger(__name__)

RETRY_AFTER_S = 5


def json_response(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json", headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        return await handler(request)
    except RateLimited as exc:
        return json_response(exc.as_json(), status=exc.status, headers={"Retry-After": str(exc.retry_after_s)})
    except ClientError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return json_response(exc.as_json(), status=exc.status, headers=headers)
    except BrokerUnavailable:
        return json_response(
            {"error": "event broker unavailable; nothing was accepted, retry later"},
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )


def client_ip(request: web.Request) -> str | None:
    if request.app[SETTINGS].trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.remote


async def _within_rate_limit(request: web.Request, key: WriteKey, events: int) -> None:
    decision = await request.app[RATE_LIMITER].take(key.key_id, events)
    if not decision.allowed:
        raise RateLimited(
            f"write key {key.key_id} is over its rate limit; retry in {decision.retry_after_s}s",
            retry_after_s=decision.retry_after_s,
        )


async def _ingest(request: web.Request, key: WriteKey, events: list[Any]) -> web.Response:
    await _within_rate_limit(request, key, len(events))
    caller = Caller(key, truncate_ip(client_ip(request)), current_request_id())
    intake = request.app[INTAKE]
    try:
        outcome = await intake.process(events, caller=caller, received_at=datetime.now(UTC))
    except RecursionError:
        # Checking or encoding a deeply nested event; nothing was claimed or published yet.
        raise BadRequest(TOO_DEEP) from None
    try:
        await _publish(request, outcome.messages)
    except BrokerUnavailable:
        await intake.release(outcome)
        raise
    metrics.count_intake(outcome.counts)  # after the publish: what the answer says, nothing a 503 undid
    log.info("batch_ingested", key_id=key.key_id, events=len(events), **outcome.totals)
    return json_response(outcome.as_json())


_published = metrics.KAFKA_PUBLISH.labels("acknowledged")
_unpublished = metrics.KAFKA_PUBLISH.labels("unavailable")


async def _publish(request: web.Request, messages: list[KafkaMessage]) -> None:
    """Publish (Kafka acks=all, and the spool under `up`), timed."""
    started = time.perf_counter()
    try:
        await request.app[PUBLISHER].publish(messages)
    except BrokerUnavailable:
        _unpublished.observe(time.perf_counter() - started)
        raise
    _published.observe(time.perf_counter() - started)


# Every handler authenticates before it reads the body: a stranger gets
# 401, not an explanation of what is wrong with the payload.


async def post_batch(request: web.Request) -> web.Response:
    key = request.app[KEYRING].authenticate(request)
    return await _ingest(request, key, body.events_of_batch(await body.read_body(request)))


async def post_event(request: web.Request) -> web.Response:
    key = request.app[KEYRING].authenticate(request)
    return await _ingest(request, key, body.events_of_single(await body.read_body(request)))


async def post_domain_events(request: web.Request) -> web.Response:
    key = request.app[KEYRING].authenticate(request)
    payload = await body.read_json(request)
    events = body.batch_events(payload) if not isinstance(payload, dict) or "batch" in payload else [payload]
    await _within_rate_limit(request, key, len(events))
    erased = await request.app[ERASED].among(key.organization_id, domain_events.users_named(events))
    outcome = domain_events.decide(events, key, erased)
    consent_messages = [_consent_message(r) for r in outcome.consent_records]
    await _publish(request, outcome.messages + consent_messages)
    await request.app[CONSENT].put_many(outcome.consent_records)
    for status, count in outcome.totals().items():
        metrics.DOMAIN_EVENTS.labels(status).inc(count)
    log.info("domain_events_ingested", key_id=key.key_id, **outcome.totals())
    return json_response(outcome.as_json())


@cache
def _consent_check() -> SchemaCheck:
    return SchemaCheck(schemas.load("consent.schema.json"))


def _consent_message(record: ConsentRecord) -> KafkaMessage:
    return KafkaMessage(CONSENT_RECORDS, f"{record.organization_id}:{record.user_id}".encode(), record.to_json())


async def put_consent(request: web.Request) -> web.Response:
    """A platform (write key) sets a user's consent."""
    key = request.app[KEYRING].authenticate(request)
    payload = await body.read_json(request)
    await _within_rate_limit(request, key, 1)
    return await _change_consent(
        request, key.organization_id, request.match_info["user_id"], payload, actor=key.key_id, actor_role="write-key"
    )


async def put_my_consent(request: web.Request) -> web.Response:
    """A person (read token) changes their own consent: transparency, Event Model seed."""
    principal = verify(request.app[READ_SECRET], bearer_token(request))
    if principal.organization_id is None:
        raise BadRequest("a token without an organization has no consent record", field="org")
    payload = await body.read_json(request)
    return await _change_consent(
        request, principal.organization_id, principal.sub, payload, actor=principal.sub, actor_role=str(principal.role)
    )


async def _change_consent(
    request: web.Request, organization_id: str, user_id: str, payload: Any, *, actor: str, actor_role: str
) -> web.Response:
    violations = _consent_check().violations(payload)
    if violations:
        raise BadRequest(f"{violations[0].field}: {violations[0].message}", field=violations[0].field)
    if await request.app[ERASED].among(organization_id, {user_id}):
        raise Gone("this user was erased: nothing about them is recorded again", field="user_id")
    record = ConsentRecord(
        organization_id=organization_id,
        user_id=user_id,
        categories=payload.get("categories") or {},
        age_band=payload.get("age_band"),
        parental_consent=payload.get("parental_consent"),
        updated_at=iso_ms(datetime.now(UTC)),
    )
    # Kafka first: the durable copy must exist before the record takes effect.
    await request.app[PUBLISHER].publish([_consent_message(record)])
    await request.app[CONSENT].put(record)
    entry = AuditEntry(
        organization_id=organization_id,
        actor=actor,
        actor_role=actor_role,
        action="consent.change",
        subject_user_id=user_id,
        target=request.path,
        detail={"categories": record.categories, "age_band": record.age_band},
        client_ip=truncate_ip(client_ip(request)),
    )
    await write_now(request.app[STORE], entry)
    return json_response({"consent": orjson.loads(record.to_json())})


async def get_schemas(request: web.Request) -> web.Response:
    taxonomy = schemas.load("taxonomy.json")
    return json_response(
        {
            "envelope": schemas.event_envelope(),
            "categories": taxonomy["categories"],
            "sampling_classes": taxonomy["sampling_classes"],
            "event_types": {
                name: {"category": t.category, "group": t.group, "sampling": t.sampling, "href": f"/v1/schemas/{name}"}
                for name, t in event_types().items()
            },
            "naming": "event types are snake_case; camelCase, PascalCase and kebab-case spellings are accepted "
            "as aliases and stored as snake_case",
        }
    )


async def get_event_schema(request: web.Request) -> web.Response:
    raw = request.match_info["event_type"]
    event_type = lookup(raw)
    if event_type is None:
        raise NotFound(f"unknown event type {raw!r}; GET /v1/schemas lists them", field="event_type")
    return json_response(
        {
            "event_type": event_type.name,
            "category": event_type.category,
            "group": event_type.group,
            "sampling": event_type.sampling,
            "envelope": schemas.event_envelope(),
            "properties": property_schema(event_type.name),
        }
    )
