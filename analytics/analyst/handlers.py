"""POST /api/v1/query and GET /api/v1/query/schema.

token -> role (system-admin, subscriber-admin: the engine confines whole
organizations; narrower roles' scopes are populations of users, which a
per-table filter cannot express) -> slot -> guard -> run -> audit -> answer,
written to the client in chunks.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime

import msgspec
from aiohttp import web

from analytics.analyst import audit
from analytics.analyst.catalog import dictionary
from analytics.analyst.guard import guard
from analytics.analyst.keys import CATALOG, LIMITS, SLOTS
from analytics.analyst.run import FORMATS, run
from analytics.handlers import scope_of
from analytics.keys import STORE
from analytics.models import ColumnDoc, QueryLimits, QueryRequest, QuerySchema, TableDoc
from lms_events.errors import BadRequest, ClientError, Forbidden, LimitExceeded
from lms_events.tokens import ORGANIZATION_WIDE

CHUNK_BYTES = 256 * 1024
_MISSING = re.compile(r"missing required field `([^`]+)`")
_AT = re.compile(r"at `\$\.([A-Za-z_]+)")
MAX_BODY_BYTES = 1024 * 1024


async def get_schema(request: web.Request) -> web.Response:
    scope = scope_of(request)
    if scope.role not in ORGANIZATION_WIDE:
        raise Forbidden(f"analyst SQL is for system-admin and subscriber-admin, not {scope.role}", field="role")
    limits = request.app[LIMITS]
    answer = QuerySchema(
        tables=[
            TableDoc(name=t["name"], description=t["description"], columns=[ColumnDoc(**c) for c in t["columns"]])
            for t in await dictionary(request.app[STORE])
        ],
        limits=QueryLimits(
            max_execution_time_s=limits.max_execution_s,
            max_result_rows=limits.max_result_rows,
            max_memory_usage_bytes=limits.max_memory_bytes,
        ),
    )
    return web.Response(body=msgspec.json.encode(answer), content_type="application/json")


async def _body(request: web.Request) -> QueryRequest:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise BadRequest(f"the body is over {MAX_BODY_BYTES} bytes", field="body")
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"the body is over {MAX_BODY_BYTES} bytes", field="body")
    try:
        return msgspec.json.decode(raw, type=QueryRequest)
    except msgspec.ValidationError as exc:
        raise BadRequest(str(exc), field=_field_of(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}", field="body") from None


def _field_of(error: str) -> str:
    """The body field a msgspec error names: `... - at `$.params[...]`` or `missing required field `sql``."""
    if (missing := _MISSING.search(error)) is not None:
        return missing.group(1)
    if (at := _AT.search(error)) is not None:
        return at.group(1)
    return "body"


async def post_query(request: web.Request) -> web.StreamResponse:
    started, clock = datetime.now(UTC), time.perf_counter()
    scope = scope_of(request)
    if scope.role not in ORGANIZATION_WIDE:
        raise Forbidden(f"analyst SQL is for system-admin and subscriber-admin, not {scope.role}", field="role")
    body = await _body(request)
    store, limits, fmt = request.app[STORE], request.app[LIMITS], FORMATS[body.format]
    query_id = str(uuid.uuid4())

    async def audited(status: str, error: str = "", rows: int = 0) -> None:
        entry = audit.Entry(
            scope.organization_id, query_id, started, scope.sub, str(scope.role), body.sql, body.params,
            body.format, status, error, rows, (time.perf_counter() - clock) * 1000,
        )  # fmt: skip
        await audit.record(store, entry)

    status = "refused"  # until the guard accepted it
    try:
        async with request.app[SLOTS].taken(scope.organization_id):
            checked = await guard(store, request.app[CATALOG], body.sql, body.params, scope.organization_id, limits)
            status = "failed"
            answer = await run(store, checked, fmt, limits)
    except ClientError as exc:
        await audited("limit" if isinstance(exc, LimitExceeded) else status, exc.reason)
        raise
    await audited("ok", rows=answer.rows or 0)
    response = web.StreamResponse(
        headers={
            "Content-Type": fmt.content_type,
            "Content-Disposition": f'inline; filename="query-{query_id}.{fmt.extension}"',
            "X-Query-Id": query_id,
            **({"X-Result-Rows": str(answer.rows)} if answer.rows is not None else {}),
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    view = memoryview(answer.body)
    for offset in range(0, len(view), CHUNK_BYTES):
        await response.write(view[offset : offset + CHUNK_BYTES])
    await response.write_eof()
    return response
