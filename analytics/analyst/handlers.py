"""POST /api/v1/query and GET /api/v1/query/schema: the JSON door to analyst SQL (service.py)."""

from __future__ import annotations

import re

import msgspec
from aiohttp import web

from analytics.analyst.catalog import dictionary
from analytics.analyst.keys import LIMITS
from analytics.analyst.run import FORMATS
from analytics.analyst.service import answered, require_analyst, streamed
from analytics.handlers import scope_of
from analytics.keys import STORE
from analytics.models import ColumnDoc, QueryLimits, QueryRequest, QuerySchema, TableDoc
from lms_events.errors import BadRequest

_MISSING = re.compile(r"missing required field `([^`]+)`")
_AT = re.compile(r"at `\$\.([A-Za-z_]+)")
MAX_BODY_BYTES = 1024 * 1024


async def get_schema(request: web.Request) -> web.Response:
    require_analyst(scope_of(request))
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
    scope = scope_of(request)
    require_analyst(scope)
    body = await _body(request)
    done = await answered(request.app, scope, body.sql, body.params, FORMATS[body.format])
    headers = {
        "Content-Type": done.format.content_type,
        "Content-Disposition": f'inline; filename="query-{done.query_id}.{done.format.extension}"',
        "X-Query-Id": done.query_id,
    }
    if done.answer.rows is not None:
        headers["X-Result-Rows"] = str(done.answer.rows)
    return await streamed(request, done.answer.body, headers)
