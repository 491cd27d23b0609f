"""HTTP handlers: parse -> decide per event -> publish -> respond.

The logic lives in `ingest.body` and `ingest.intake`; handlers only wire
the request to it. Errors are turned into responses by `error_middleware`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import structlog
from aiohttp import web

from ingest import body
from ingest.keys import INTAKE, PUBLISHER
from lms_events.errors import BrokerUnavailable, ClientError

log = structlog.get_logger(__name__)

RETRY_AFTER_S = 5


def json_response(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json", headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        return await handler(request)
    except ClientError as exc:
        return json_response(exc.as_json(), status=exc.status)
    except BrokerUnavailable:
        return json_response(
            {"error": "event broker unavailable; nothing was accepted, retry later"},
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )


async def _ingest(request: web.Request, events: list[object]) -> web.Response:
    outcome = request.app[INTAKE].process(events, received_at=datetime.now(UTC))
    await request.app[PUBLISHER].publish(outcome.messages)
    totals = outcome.totals()
    log.info("batch_ingested", events=len(events), **totals)
    return json_response(outcome.as_json())


async def post_batch(request: web.Request) -> web.Response:
    return await _ingest(request, body.batch_events(await body.read_json(request)))


async def post_event(request: web.Request) -> web.Response:
    return await _ingest(request, body.single_event(await body.read_json(request)))
