"""The ClickHouse HTTP interface at /clickhouse (and /clickhouse/), enough of it for clickhouse-connect
(and pandas, Superset, Grafana through it) to run analyst SQL under the same rules.

    credential   Authorization: Bearer <read token> (clickhouse-connect `access_token=`),
                 or Basic with the token as password, or X-ClickHouse-Key
    query        the `query` URL parameter followed by the body, as ClickHouse reads them
    parameters   `param_<name>`, in ClickHouse's escaped text form, passed as they are
    format       a trailing `FORMAT X` of the text (clients append one), else `default_format`,
                 else TabSeparated; one of run.HTTP_FORMATS
    settings     every other URL parameter (database, session_id, client settings) is ignored:
                 the guard's settings are the only ones a query runs with

Errors are ClickHouse's shape (`Code: N. DB::Exception: ...`, X-ClickHouse-Exception-Code),
with the product's 4xx statuses. Two probes clickhouse-connect sends on connecting are
answered here: its settings probe (no settings are changeable) and `SELECT version(), timezone()`.
"""

from __future__ import annotations

import base64
import binascii

import orjson
from aiohttp import web

from analytics.analyst.run import HTTP_FORMATS, Format
from analytics.analyst.service import answered, streamed
from analytics.keys import JWT_SECRET
from analytics.scope import Scope
from lms_events.clickhouse import EngineText
from lms_events.errors import (
    BadRequest,
    ClientError,
    LimitExceeded,
    RateLimited,
    Unauthorized,
)
from lms_events.tokens import verify

# clickhouse-connect (proxy_path="clickhouse") asks for /clickhouse; curl users write /clickhouse/.
PATHS = ("/clickhouse", "/clickhouse/")
# A system-admin names the organization as in the analytics API (a URL parameter the client adds).
ORGANIZATION_PARAMETER = "organizationId"
DEFAULT_FORMAT = "TabSeparated"
MAX_QUERY_BYTES = 1024 * 1024
# clickhouse-connect's probe of changeable settings, answered with none: what it would send is ignored anyway.
SETTINGS_PROBE = "SELECT name, value, readonly FROM system.settings LIMIT 10000"
EMPTY_SETTINGS = "SELECT name, value, readonly FROM (SELECT '' AS name, '' AS value, toUInt8(1) AS readonly) WHERE 0"
# ClickHouse's error codes for what the product answers 4xx.
_CODES = {400: (36, "BAD_ARGUMENTS"), 401: (516, "AUTHENTICATION_FAILED"), 403: (497, "ACCESS_DENIED"), 429: (202, "TOO_MANY_SIMULTANEOUS_QUERIES")}
_LIMIT_CODES = {"max_execution_time": (159, "TIMEOUT_EXCEEDED"), "max_result_rows": (396, "TOO_MANY_ROWS_OR_BYTES"), "max_memory_usage": (241, "MEMORY_LIMIT_EXCEEDED")}


def _token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer ") :].strip()
    if header.startswith("Basic "):
        try:
            _, _, password = base64.b64decode(header[len("Basic ") :]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("Basic credentials are not base64 user:password") from None
        return password
    if key := request.headers.get("X-ClickHouse-Key"):
        return key
    raise Unauthorized("send a read token: Authorization: Bearer <JWT>, or as the password")


def _scope(request: web.Request) -> Scope:
    principal = verify(request.app[JWT_SECRET], _token(request))
    return Scope.of(principal, request.query.get(ORGANIZATION_PARAMETER) or None)


async def _text(request: web.Request) -> str:
    raw = await request.content.read(MAX_QUERY_BYTES + 1) if request.method == "POST" else b""
    if len(raw) > MAX_QUERY_BYTES:
        raise BadRequest(f"the query is over {MAX_QUERY_BYTES} bytes", field="query")
    try:
        body = raw.decode()
    except UnicodeDecodeError:
        raise BadRequest("the query is not UTF-8", field="query") from None
    head = request.query.get("query", "")
    return f"{head}\n{body}" if head and body else head or body


def _error(exc: ClientError) -> web.Response:
    code, name = _LIMIT_CODES[exc.field or ""] if isinstance(exc, LimitExceeded) else _CODES.get(exc.status, (0, "UNKNOWN"))
    headers = {"X-ClickHouse-Exception-Code": str(code)}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    return web.Response(status=exc.status, text=f"Code: {code}. DB::Exception: {exc.reason}. ({name})\n", headers=headers)


async def handle(request: web.Request) -> web.StreamResponse:
    try:
        scope = _scope(request)
        sql = await _text(request)
        if " ".join(sql.split()) == SETTINGS_PROBE + " FORMAT Native":
            sql = EMPTY_SETTINGS + " FORMAT Native"
        params = {name[len("param_") :]: EngineText(value) for name, value in request.query.items() if name.startswith("param_")}
        default = HTTP_FORMATS.get(request.query.get("default_format", DEFAULT_FORMAT)) or HTTP_FORMATS[DEFAULT_FORMAT]
        done = await answered(request.app, scope, sql, params, default, text_formats=HTTP_FORMATS)
    except ClientError as exc:
        return _error(exc)
    return await streamed(request, done.answer.body, _headers(done.format, done.query_id, done.answer.rows))


def _headers(fmt: Format, query_id: str, rows: int | None) -> dict[str, str]:
    summary = {"read_rows": "0", "result_rows": str(rows or 0), "written_rows": "0"}
    return {
        "Content-Type": fmt.content_type,
        "X-ClickHouse-Format": fmt.clickhouse,
        "X-ClickHouse-Query-Id": query_id,
        "X-ClickHouse-Timezone": "UTC",
        "X-ClickHouse-Summary": orjson.dumps(summary).decode(),
    }
