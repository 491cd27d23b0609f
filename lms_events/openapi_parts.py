"""Building blocks of the OpenAPI operations (lms_events/openapi.py): answers,
errors, parameters and the shapes of write, read and paged operations."""

from __future__ import annotations

from typing import Any

from analytics.export import CSV_TYPE
from analytics.params import DEFAULT_PAGE_SIZE, MAX_ID_LENGTH, MAX_PAGE_SIZE
from ingest.body import MAX_BATCH_EVENTS, MAX_BODY_BYTES, MAX_EVENT_BYTES
from lms_events.openapi_schemas import JSON, READ_TOKEN, WRITE_KEY, ref

RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}}


def answer_response(description: str, schema: dict[str, Any], **headers: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def error_response(description: str, *, retry: bool = False) -> dict[str, Any]:
    return answer_response(description, ref("ErrorAnswer"), **(RETRY_AFTER if retry else {}))


BAD_REQUEST = error_response("malformed request: bad JSON, content type, encoding or parameter (named in `field`)")
UNAUTHORIZED = error_response("missing, unknown or revoked credential")
TOO_LARGE = error_response(
    f"a size limit: {MAX_BODY_BYTES} bytes a body after decompression, {MAX_BATCH_EVENTS} events a batch"
)
RATE_LIMITED = error_response("the write key's rate limit; retry after Retry-After", retry=True)
BROKER_DOWN = error_response("Kafka did not acknowledge in time; nothing was accepted", retry=True)
FORBIDDEN = error_response("the token's role may not read this (e.g. another organization)")
NOT_FOUND = error_response("no such entity in the caller's scope (existence outside it is not revealed)")

WRITE_ERRORS = {"400": BAD_REQUEST, "401": UNAUTHORIZED, "413": TOO_LARGE, "429": RATE_LIMITED, "503": BROKER_DOWN}
READ_ERRORS = {"400": BAD_REQUEST, "401": UNAUTHORIZED, "403": FORBIDDEN}
CONFLICT = error_response("the job's status does not allow this (e.g. cancel a completed job); `field` is status")
GONE = error_response("the report's file has expired (past expiresAt); run the report again")


def json_or_csv(description: str, model: str, csv_shape: str) -> dict[str, Any]:
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


def query_parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def path_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": IDENTIFIER, "description": description}


ORGANIZATION = query_parameter(
    "organizationId",
    IDENTIFIER,
    "The organization to read: a system-admin's choice (required by every endpoint but the dashboard); "
    "other roles may name only their own (else 403).",
)
FORMAT = query_parameter(
    "format", {"enum": ["json", "csv"], "default": "json"}, "`csv` answers text/csv, as `Accept: text/csv` does"
)
UNTIL = query_parameter("until", DAY, "The last UTC day of the window (default: today)")
LIMIT = query_parameter(
    "limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE}, "page size"
)
CURSOR = query_parameter("cursor", {"type": "string"}, "the `nextCursor` of the previous page")
READ_COMMON = [ORGANIZATION, FORMAT]
CONTENT_ENCODING = {
    "name": "Content-Encoding",
    "in": "header",
    "required": False,
    "schema": {"enum": ["gzip", "x-gzip", "deflate", "identity"]},
    "description": "compressed bodies are inflated by the gateway, bounded by the body limit",
}


# Operations -----------------------------------------------------------------


def events_body(single: bool) -> dict[str, Any]:
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


def write_operation(
    summary: str, answer: str, body: dict[str, Any], parameters: tuple[dict[str, Any], ...] = ()
) -> dict[str, Any]:
    return {
        "tags": ["ingest"],
        "summary": summary,
        "security": [{WRITE_KEY: []}],
        "parameters": [*parameters, CONTENT_ENCODING],
        "requestBody": body,
        "responses": {"200": answer_response("decided", ref(answer)), **WRITE_ERRORS},
    }


def read_operation(summary: str, parameters: list[dict[str, Any]], ok: dict[str, Any], *, entity: bool) -> dict[str, Any]:
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


def entity_operation(kind: str, name: str, model: str) -> dict[str, Any]:
    return read_operation(
        f"One {kind}, all time, over the caller's users",
        [path_parameter(name, f"the {kind}'s id")],
        json_or_csv(f"the {kind}'s figures", model, "a header row and one row; list fields as JSON in their cell"),
        entity=True,
    )


def page_operation(summary: str, parameters: list[dict[str, Any]], model: str) -> dict[str, Any]:
    return read_operation(
        summary,
        [*parameters, LIMIT, CURSOR],
        json_or_csv("a page", model, "every page from `cursor` on, streamed: a header row, one row an item"),
        entity=False,
    )


def public_operation(tag: str, summary: str, answer: str, **responses: dict[str, Any]) -> dict[str, Any]:
    return {"tags": [tag], "summary": summary, "responses": {"200": answer_response("ok", ref(answer)), **responses}}


def instant_parameter(name: str, description: str) -> dict[str, Any]:
    return query_parameter(name, {"anyOf": [DAY, {"type": "string", "format": "date-time"}]}, description)


def analyst_query() -> dict[str, Any]:
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
            "422": error_response("a limit was exceeded (`field`: max_execution_time, max_result_rows, max_memory_usage)"),
            "429": error_response("the organization's concurrent queries are at their limit (`field`: query_concurrency)", retry=True),
        },
    }


def clickhouse_http(method: str) -> dict[str, Any]:
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
            query_parameter("query", {"type": "string"}, "the SQL (or its start, for POST)"),
            query_parameter("default_format", {"type": "string", "default": "TabSeparated"}, "the output format without FORMAT"),
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
