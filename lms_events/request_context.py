"""Per request: an id every log line of the request carries, and its latency by route.

The id is new for every request (a random UUID, hex), never taken from
the client: it also keys the request's `intake_outcomes` rows, which a
reused id would collapse. It is sent back in the answer's `X-Request-ID`
and bound to structlog's context, so every log line written while the
request runs names it; it says nothing about the caller (no key, user or IP).

The latency histogram is labelled by the route's template, so ids in
paths never become label values; a request no route matched is
`(unmatched)`, and a method outside the standard ones `OTHER`.
"""

from __future__ import annotations

import time
import uuid
from contextvars import ContextVar

import structlog
from aiohttp import web

from lms_events.metrics import http_requests

REQUEST_ID_HEADER = "X-Request-ID"
# The id of the request this task serves (a handler runs in its middleware's task).
_CURRENT: ContextVar[str | None] = ContextVar("lms_events_request_id", default=None)
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
UNMATCHED = "(unmatched)"


def current_request_id() -> str:
    """The id of the request being served (set by `request_context`; a new one outside it)."""
    return _CURRENT.get() or uuid.uuid4().hex


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def request_context(request: web.Request, handler):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    rid = uuid.uuid4().hex
    current = _CURRENT.set(rid)
    tokens = structlog.contextvars.bind_contextvars(request_id=rid)
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:  # a streamed answer sent its headers already
            response.headers[REQUEST_ID_HEADER] = rid
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = rid
        raise
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
        _CURRENT.reset(current)
        method = request.method if request.method in METHODS else "OTHER"
        http_requests(method, _route(request), str(status)).observe(time.perf_counter() - started)
