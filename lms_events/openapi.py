"""The OpenAPI 3.1 document of the product, from the definitions the code runs on.

    gateway request bodies   schemas/*.json (the gateway's own rulebook), `$defs` hoisted
    gateway answers          ingest/answers.py
    analytics answers        analytics/models.py (the handlers encode through them)
    report jobs              reports/models.py (request and answers), reports/writers FORMATS
    errors                   lms_events.errors.ErrorAnswer
    parameters               the constants of analytics.params, progress, drilldown

`document(routes)` describes exactly the routes an application serves:
`up` (gateway and API), `lms-events gateway`, `lms-events api`. A route
without an operation here is a LookupError when the app starts, so a new
endpoint cannot ship undocumented.

The entry points wire this module, and it sits beside them: it reads the
stages' models, and nothing below imports it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib.metadata import version
from typing import Any

import msgspec

import schemas
from analytics import models
from analytics.audit_trail import FILTER_PARAMETERS as AUDIT_FILTERS
from analytics.drilldown import FILTER_PARAMETERS
from analytics.export import CSV_TYPE
from analytics.params import DEFAULT_PAGE_SIZE, DEFAULT_TIMEFRAME, MAX_ID_LENGTH, MAX_PAGE_SIZE, TIMEFRAMES
from analytics.progress import STATUSES
from ingest import answers
from ingest.body import MAX_BATCH_EVENTS, MAX_BODY_BYTES, MAX_EVENT_BYTES
from lms_events.errors import ErrorAnswer
from reports import lookups, models as report_models
from reports.writers import FORMATS

OPENAPI_VERSION = "3.1.0"
SCHEMA_REF = "#/components/schemas/{name}"
JSON = "application/json"

# schemas/ file -> component name; each `$defs` entry X becomes "<name>.X".
REQUEST_SCHEMAS = {
    "event.schema.json": "Event",
    "event_properties.schema.json": "EventProperties",
    "domain_events.schema.json": "DomainEvent",
    "consent.schema.json": "Consent",
}
# Keywords of a schema file that only label it: a file with nothing else
# (event_properties: only `$defs`) adds its definitions, not itself.
_LABELS = {"title", "description"}

WRITE_KEY = "writeKey"
READ_TOKEN = "readToken"
SECURITY_SCHEMES = {
    WRITE_KEY: {
        "type": "http",
        "scheme": "bearer",
        "description": "A write key of one organization and environment (`lms-events keys create`). Writes only.",
    },
    READ_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "HS256 JWT with sub, org, role, departments, exp (`lms-events token`). Reads only.",
    },
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMA_REF.format(name=name)}


_LOCAL_DEF = "#/$defs/"


def _rewrite_refs(node: Any, prefix: str) -> Any:
    """A copy of a schema with `#/$defs/X` pointing at the hoisted component `<prefix>.X`."""
    if isinstance(node, dict):
        copy = {key: _rewrite_refs(value, prefix) for key, value in node.items()}
        target = copy.get("$ref")
        if isinstance(target, str) and target.startswith(_LOCAL_DEF):
            copy["$ref"] = SCHEMA_REF.format(name=f"{prefix}.{target[len(_LOCAL_DEF):]}")
        return copy
    if isinstance(node, list):
        return [_rewrite_refs(item, prefix) for item in node]
    return node


def hoisted(file: str, name: str) -> dict[str, Any]:
    """A schemas/ file as components. `$schema` and `$id` go: inside the
    document an `$id` would rebase every reference onto lms-events.dev."""
    document = schemas.load(file)
    body = {key: value for key, value in document.items() if key not in ("$schema", "$id", "$defs")}
    components = {f"{name}.{key}": _rewrite_refs(value, name) for key, value in document.get("$defs", {}).items()}
    if set(body) - _LABELS:
        components[name] = _rewrite_refs(body, name)
    return components


@cache
def component_schemas() -> dict[str, Any]:
    structs = (*models.ANSWERS, *report_models.ANSWERS, *answers.ANSWERS, models.QueryRequest, ErrorAnswer)
    _, generated = msgspec.json.schema_components(structs, ref_template=SCHEMA_REF)
    for file, name in REQUEST_SCHEMAS.items():
        request_schemas = hoisted(file, name)
        clash = set(request_schemas) & set(generated)
        if clash:
            raise ValueError(f"component names used twice: {sorted(clash)}")
        generated.update(request_schemas)
    return dict(sorted(generated.items()))


# Responses ------------------------------------------------------------------

_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}}


def _answer(description: str, schema: dict[str, Any], **headers: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _error(description: str, *, retry: bool = False) -> dict[str, Any]:
    return _answer(description, ref("ErrorAnswer"), **(_RETRY_AFTER if retry else {}))


BAD_REQUEST = _error("malformed request: bad JSON, content type, encoding or parameter (named in `field`)")
UNAUTHORIZED = _error("missing, unknown or revoked credential")
TOO_LARGE = _error(
    f"a size limit: {MAX_BODY_BYTES} bytes a body after decompression, {MAX_BATCH_EVENTS} events a batch"
)
RATE_LIMITED = _error("the write key's rate limit; retry after Retry-After", retry=True)
BROKER_DOWN = _error("Kafka did not acknowledge in time; nothing was accepted", retry=True)
FORBIDDEN = _error("the token's role may not read this (e.g. another organization)")
NOT_FOUND = _error("no such entity in the caller's scope (existence outside it is not revealed)")

WRITE_ERRORS = {"400": BAD_REQUEST, "401": UNAUTHORIZED, "413": TOO_LARGE, "429": RATE_LIMITED, "503": BROKER_DOWN}
READ_ERRORS = {"400": BAD_REQUEST, "401": UNAUTHORIZED, "403": FORBIDDEN}
CONFLICT = _error("the job's status does not allow this (e.g. cancel a completed job); `field` is status")
GONE = _error("the report's file has expired (past expiresAt); run the report again")


def _json_or_csv(description: str, model: str, csv_shape: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            JSON: {"schema": ref(model)},
            CSV_TYPE: {"schema": {"type": "string", "description": csv_shape}},
        },
    }


# Parameters -----------------------------------------------------------------

IDENTIFIER = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}
DAY = {"type": "string", "format": "date"}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": IDENTIFIER, "description": description}


ORGANIZATION = _query(
    "organizationId",
    IDENTIFIER,
    "The organization to read: a system-admin's choice (required by every endpoint but the dashboard); "
    "other roles may name only their own (else 403).",
)
FORMAT = _query(
    "format", {"enum": ["json", "csv"], "default": "json"}, "`csv` answers text/csv, as `Accept: text/csv` does"
)
UNTIL = _query("until", DAY, "The last UTC day of the window (default: today)")
LIMIT = _query(
    "limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE}, "page size"
)
CURSOR = _query("cursor", {"type": "string"}, "the `nextCursor` of the previous page")
READ_COMMON = [ORGANIZATION, FORMAT]
CONTENT_ENCODING = {
    "name": "Content-Encoding",
    "in": "header",
    "required": False,
    "schema": {"enum": ["gzip", "x-gzip", "deflate", "identity"]},
    "description": "compressed bodies are inflated by the gateway, bounded by the body limit",
}


# Operations -----------------------------------------------------------------


def _events_body(single: bool) -> dict[str, Any]:
    if single:
        schema: dict[str, Any] = ref("Event")
    else:
        array = {"type": "array", "items": ref("Event"), "minItems": 1, "maxItems": MAX_BATCH_EVENTS}
        schema = {"oneOf": [{"type": "object", "required": ["batch"], "properties": {"batch": array}}, array]}
    return {
        "required": True,
        "description": (
            f"Each event at most {MAX_EVENT_BYTES} bytes as stored. `properties` is checked against the schema of "
            "the event's type (`GET /v1/schemas/{event_type}`; components `EventProperties.type_<event_type>`). "
            "text/plain is read as JSON too (navigator.sendBeacon sends it without a CORS preflight)."
        ),
        "content": {JSON: {"schema": schema}, "text/plain": {"schema": schema}},
    }


def _write(
    summary: str, answer: str, body: dict[str, Any], parameters: tuple[dict[str, Any], ...] = ()
) -> dict[str, Any]:
    return {
        "tags": ["ingest"],
        "summary": summary,
        "security": [{WRITE_KEY: []}],
        "parameters": [*parameters, CONTENT_ENCODING],
        "requestBody": body,
        "responses": {"200": _answer("decided", ref(answer)), **WRITE_ERRORS},
    }


def _read(summary: str, parameters: list[dict[str, Any]], ok: dict[str, Any], *, entity: bool) -> dict[str, Any]:
    responses = {"200": ok, **READ_ERRORS}
    if entity:
        responses["404"] = NOT_FOUND
    return {
        "tags": ["analytics"],
        "summary": summary,
        "security": [{READ_TOKEN: []}],
        "parameters": [*parameters, *READ_COMMON],
        "responses": responses,
    }


def _entity(kind: str, name: str, model: str) -> dict[str, Any]:
    return _read(
        f"One {kind}, all time, over the caller's users",
        [_path(name, f"the {kind}'s id")],
        _json_or_csv(f"the {kind}'s figures", model, "a header row and one row; list fields as JSON in their cell"),
        entity=True,
    )


def _page(summary: str, parameters: list[dict[str, Any]], model: str) -> dict[str, Any]:
    return _read(
        summary,
        [*parameters, LIMIT, CURSOR],
        _json_or_csv("a page", model, "every page from `cursor` on, streamed: a header row, one row an item"),
        entity=False,
    )


def _public(tag: str, summary: str, answer: str, **responses: dict[str, Any]) -> dict[str, Any]:
    return {"tags": [tag], "summary": summary, "responses": {"200": _answer("ok", ref(answer)), **responses}}


def _instant(name: str, description: str) -> dict[str, Any]:
    return _query(name, {"anyOf": [DAY, {"type": "string", "format": "date-time"}]}, description)


def _analyst_query() -> dict[str, Any]:
    binary = {"type": "string", "contentMediaType": "application/octet-stream"}
    return {
        "tags": ["analyst SQL"],
        "summary": "Run one SELECT over the documented tables, confined to the caller's organization",
        "description": (
            "system-admin (every organization, or `?organizationId=`) and subscriber-admin. The query is parsed "
            "by ClickHouse, checked (one SELECT; only the tables of `GET /api/v1/query/schema`; no table "
            "functions, dictionaries, system tables, SETTINGS, FORMAT or INTO OUTFILE) and run read-only with "
            "every table confined to the organization. Every query is audited in the table `analyst_queries`."
        ),
        "security": [{READ_TOKEN: []}],
        "parameters": [ORGANIZATION],
        "requestBody": {"required": True, "content": {JSON: {"schema": ref("QueryRequest")}}},
        "responses": {
            "200": {
                "description": "the rows, streamed, in the format asked for; X-Query-Id names the audit row",
                "content": {
                    JSON: {"schema": {"type": "object", "description": "ClickHouse JSON: meta (name, type), data, rows"}},
                    CSV_TYPE: {"schema": {"type": "string", "description": "a header row, one row a result row"}},
                    "application/vnd.apache.parquet": {"schema": binary},
                    "application/vnd.apache.arrow.stream": {"schema": binary},
                },
            },
            **READ_ERRORS,
            "422": _error("a limit was exceeded (`field`: max_execution_time, max_result_rows, max_memory_usage)"),
            "429": _error("the organization's concurrent queries are at their limit (`field`: query_concurrency)", retry=True),
        },
    }


def _clickhouse_http(method: str) -> dict[str, Any]:
    query = "the `query` URL parameter" + (" followed by the body" if method == "POST" else "")
    return {
        "tags": ["analyst SQL"],
        "summary": "ClickHouse's HTTP interface for analyst SQL (clickhouse-connect: proxy_path='clickhouse')",
        "description": (
            f"The SQL is {query}; `param_<name>` bind `{{name:Type}}`; a trailing `FORMAT X` or `default_format` "
            "chooses the output (Native, RowBinary, Arrow, ArrowStream, Parquet, JSON, JSONEachRow, CSV, TabSeparated, "
            "...). The same rules as `POST /api/v1/query`; other URL parameters (settings, database, session) are "
            "ignored. Credential: the read token as Bearer, as the Basic password, or in X-ClickHouse-Key. Errors "
            "are ClickHouse's text (`Code: N. DB::Exception: ...`) with X-ClickHouse-Exception-Code."
        ),
        "security": [{READ_TOKEN: []}],
        "parameters": [
            ORGANIZATION,
            _query("query", {"type": "string"}, "the SQL (or its start, for POST)"),
            _query("default_format", {"type": "string", "default": "TabSeparated"}, "the output format without FORMAT"),
        ],
        **(
            {"requestBody": {"required": False, "content": {"text/plain": {"schema": {"type": "string"}}}}}
            if method == "POST"
            else {}
        ),
        "responses": {
            "200": {
                "description": "the rows in the format asked for; X-ClickHouse-Format, X-ClickHouse-Query-Id",
                "content": {"application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}},
            },
            **{
                status: {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}
                for status, description in (
                    ("400", "refused by the guard, or ClickHouse refused the query"),
                    ("401", "missing or invalid read token"),
                    ("403", "a role that may not run analyst SQL"),
                    ("422", "a limit was exceeded"),
                    ("429", "the organization's concurrent queries are at their limit"),
                )
            },
        },
    }


@cache
def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """Every operation the product can serve, by (method, path)."""
    domain_array = {"type": "array", "items": ref("DomainEvent"), "minItems": 1, "maxItems": MAX_BATCH_EVENTS}
    domain_body = {
        "required": True,
        "description": "One domain event, `{\"batch\": [...]}` or an array of them",
        "content": {
            JSON: {
                "schema": {
                    "oneOf": [
                        ref("DomainEvent"),
                        {"type": "object", "required": ["batch"], "properties": {"batch": domain_array}},
                        domain_array,
                    ]
                }
            }
        },
    }
    return {
        ("POST", "/v1/batch"): _write("Post a batch of events", "IntakeAnswer", _events_body(single=False)),
        ("POST", "/v1/events"): _write("Post one event", "IntakeAnswer", _events_body(single=True)),
        ("POST", "/v1/domain-events"): _write(
            "Post domain events (UserCreated, CourseCreated, ...) to the domain topics", "DomainAnswer", domain_body
        ),
        ("PUT", "/v1/consent/{user_id}"): _write(
            "Set a user's consent per category and age band",
            "ConsentAnswer",
            {"required": True, "content": {JSON: {"schema": ref("Consent")}}},
            parameters=(_path("user_id", "the platform's user id"),),
        ),
        ("GET", "/v1/schemas"): _public("schemas", "The envelope, the taxonomy and every event type", "SchemasAnswer"),
        ("GET", "/v1/schemas/{event_type}"): {
            **_public("schemas", "One event type's schema", "EventSchemaAnswer", **{"404": _error("unknown event type")}),
            "parameters": [_path("event_type", "snake_case, camelCase, PascalCase or kebab-case")],
        },
        ("GET", "/health"): _public(
            "operations", "Broker, Redis, ClickHouse (and `up`'s stream worker)", "HealthAnswer", **{"503": _answer("degraded", ref("HealthAnswer"))}
        ),
        ("GET", "/api/v1/dashboard"): _read(
            "The seven metrics over a window and the one before it, daily charts, a summary",
            [
                _query("timeframe", {"enum": list(TIMEFRAMES), "default": DEFAULT_TIMEFRAME}, "the window's length"),
                UNTIL,
                {
                    "name": "filters",
                    "in": "query",
                    "required": False,
                    "description": "narrows the population, e.g. {\"courseId\": \"c1\"}",
                    "content": {JSON: {"schema": ref("DashboardFilters")}},
                },
            ],
            _json_or_csv(
                "the dashboard",
                "DashboardAnswer",
                "one row a metric: metricType, value, previousValue, changePercentage, timeframe",
            ),
            entity=False,
        ),
        ("GET", "/api/v1/users/{userId}/analytics"): _entity("user", "userId", "UserAnalytics"),
        ("GET", "/api/v1/courses/{courseId}/analytics"): _entity("course", "courseId", "CourseAnalytics"),
        ("GET", "/api/v1/assessments/{assessmentId}/analytics"): _entity(
            "assessment", "assessmentId", "AssessmentAnalytics"
        ),
        ("GET", "/api/v1/learning-progress"): _page(
            "One row per enrollment as of `until`, by (userId, courseId)",
            [
                _query("userId", IDENTIFIER, "only this user"),
                _query("courseId", IDENTIFIER, "only this course"),
                _query("status", {"enum": list(STATUSES)}, "only enrollments in this status"),
                UNTIL,
            ],
            "ProgressPage",
        ),
        ("GET", "/api/v1/events"): _page(
            "The events behind a figure, by (timestamp, eventId)",
            [
                *(_query(name, IDENTIFIER, f"only events with this {name}") for name in FILTER_PARAMETERS.values()),
                _instant("from", "from this instant on (a date is its UTC midnight)"),
                _instant("to", "before this instant (a date is its UTC midnight)"),
            ],
            "EventPage",
        ),
        ("GET", "/api/v1/audit"): _page(
            "The audit trail of the organization, newest first (subscriber-admin, system-admin)",
            [
                *(_query(name, IDENTIFIER, f"only rows with this {name}") for name in AUDIT_FILTERS),
                _instant("from", "from this instant on (a date is its UTC midnight)"),
                _instant("to", "before this instant (a date is its UTC midnight)"),
            ],
            "AuditPage",
        ),
        ("PUT", "/api/v1/me/consent"): {
            "tags": ["analytics"],
            "summary": "Change your own consent per category (read token); takes effect at the gateway at once",
            "security": [{READ_TOKEN: []}],
            "requestBody": {"required": True, "content": {JSON: {"schema": ref("Consent")}}},
            "responses": {"200": _answer("your consent record", ref("ConsentAnswer")), **READ_ERRORS},
        },
        ("GET", "/api/v1/me/data-usage"): _read(
            "What is collected about you, how long each kind is kept, and how many rows are held about you",
            [],
            _answer("your data usage", ref("DataUsage")),
            entity=False,
        ),
        ("GET", "/api/v1/query/schema"): {
            "tags": ["analyst SQL"],
            "summary": "The data dictionary: the tables analyst SQL may read, every column described, and the limits",
            "security": [{READ_TOKEN: []}],
            "responses": {"200": _answer("the dictionary", ref("QuerySchema")), **READ_ERRORS},
        },
        ("POST", "/api/v1/query"): _analyst_query(),
        **{(method, path): _clickhouse_http(method) for path in ("/clickhouse", "/clickhouse/") for method in ("GET", "POST")},
        ("GET", "/openapi.json"): {
            "tags": ["docs"],
            "summary": "This document",
            "responses": {"200": _answer("OpenAPI 3.1", {"type": "object"})},
        },
        ("GET", "/docs"): {
            "tags": ["docs"],
            "summary": "Swagger UI for this document",
            "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}},
        },
    }


def _report(
    summary: str,
    ok: dict[str, Any],
    *,
    status: str = "200",
    parameters: tuple[dict[str, Any], ...] = (),
    body: dict[str, Any] | None = None,
    **errors: dict[str, Any],
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": ["reports"],
        "summary": summary,
        "security": [{READ_TOKEN: []}],
        "parameters": [*parameters, ORGANIZATION],
        "responses": {status: ok, **READ_ERRORS, **errors},
    }
    if body is not None:
        operation["requestBody"] = body
    return operation


JOB_ID = _path("jobId", "the report job's id")
_JOB = _answer("the job", ref("ReportJob"))
_JOB_BODY = {"required": True, "content": {JSON: {"schema": ref("ReportJobRequest")}}}
_FILE = {
    "description": "the file, streamed, with Content-Disposition naming it",
    "content": {fmt.content_type: {"schema": {"type": "string", "format": "binary"}} for fmt in FORMATS.values()},
}


def report_operations() -> dict[tuple[str, str], dict[str, Any]]:
    jobs, job = "/api/v1/report-jobs", "/api/v1/report-jobs/{jobId}"
    return {
        ("POST", jobs): _report(
            "Create a report job: queued at once, or pending until scheduledFor", _answer("accepted", ref("ReportJob")),
            status="202", body=_JOB_BODY,
        ),
        ("GET", jobs): _report(
            "The report jobs the caller may see, newest first (keyset pages)", _answer("a page", ref("ReportJobPage")),
            parameters=(
                _query("status", {"enum": list(lookups.values("report-status"))}, "only jobs in this status"),
                _query("reportType", {"enum": list(lookups.values("report-type"))}, "only jobs of this report type"),
                _query("requestedBy", IDENTIFIER, "the requester's user id"),
                LIMIT,
                CURSOR,
            ),
        ),
        ("GET", job): _report("One report job, with live progress while it runs", _JOB, parameters=(JOB_ID,), **{"404": NOT_FOUND}),
        ("DELETE", job): _report(
            "Delete a job and its file (a job not yet final is cancelled first)", {"description": "deleted"},
            status="204", parameters=(JOB_ID,), **{"404": NOT_FOUND},
        ),
        ("POST", f"{job}/cancel"): _report(
            "Cancel a pending, queued or running job (a running one stops within a chunk)", _JOB,
            parameters=(JOB_ID,), **{"404": NOT_FOUND, "409": CONFLICT},
        ),
        ("POST", f"{job}/retry"): _report(
            "Queue a failed job again", _answer("queued", ref("ReportJob")), status="202",
            parameters=(JOB_ID,), **{"404": NOT_FOUND, "409": CONFLICT},
        ),
        ("GET", f"{job}/download"): _report(
            "Download a completed job's file", _FILE, parameters=(JOB_ID,),
            **{"404": NOT_FOUND, "409": CONFLICT, "410": GONE},
        ),
        ("GET", "/api/v1/reports"): _report("The report types generated here", _answer("report types", ref("ReportTypeList"))),
        ("POST", "/api/v1/reports/{reportId}/generate"): _report(
            "Create a job of this report type (the body of POST /api/v1/report-jobs; reportType is the path's)",
            _answer("accepted", ref("ReportJob")), status="202",
            parameters=(_path("reportId", "a report-type lookup value"),),
            body={"required": False, "content": {JSON: {"schema": {"type": "object"}}}},
        ),
        ("GET", "/api/v1/reports/{reportId}/status/{jobId}"): _report(
            "A job of this report type", _JOB, parameters=(_path("reportId", "a report-type lookup value"), JOB_ID),
            **{"404": NOT_FOUND},
        ),
        ("GET", "/api/v1/report-lookups"): _report(
            "Every lookup category and its allowed values", _answer("lookup values", ref("LookupValues"))
        ),
    }  # fmt: skip


def document(routes: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The document of these (method, path) routes, in path order."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in sorted(routes, key=lambda route: (route[1], route[0])):
        operation = operations().get((method, path)) or report_operations().get((method, path))
        if operation is None:
            raise LookupError(f"{method} {path} has no OpenAPI operation; describe it in lms_events/openapi.py")
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "lms-events",
            "version": version("lms-events"),
            "description": "Learning-event ingestion (`/v1`, write keys) and analytics (`/api/v1`, read tokens). "
            "Errors are `{\"error\": ..., \"field\": ...}`.",
        },
        "paths": paths,
        "components": {"schemas": component_schemas(), "securitySchemes": SECURITY_SCHEMES},
    }
