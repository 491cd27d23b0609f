"""The OpenAPI 3.1 document of the product, from the definitions the code runs on.

    gateway request bodies   schemas/*.json (the gateway's own rulebook), `$defs` hoisted
    gateway answers          ingest/answers.py
    analytics answers        analytics/models.py (the handlers encode through them)
    report jobs              reports/models.py (request and answers), reports/writers FORMATS
    templates, schedules,    lms_events/openapi_plans.py, from reports/plan_models.py and
    report metadata          reports/metadata_models.py
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


from analytics.audit_trail import FILTER_PARAMETERS as AUDIT_FILTERS
from analytics.drilldown import FILTER_PARAMETERS
from analytics.params import DEFAULT_TIMEFRAME, TIMEFRAMES
from analytics.progress import STATUSES
from ingest.body import MAX_BATCH_EVENTS
from reports import lookups
from reports.writers import FORMATS

from lms_events.openapi_privacy import privacy_operations, with_erased_user
from lms_events.openapi_parts import (
    analyst_query,
    answer_response,
    clickhouse_http,
    CONFLICT,
    CURSOR,
    entity_operation,
    error_response,
    events_body,
    GONE,
    IDENTIFIER,
    instant_parameter,
    json_or_csv,
    LIMIT,
    NOT_FOUND,
    ORGANIZATION,
    page_operation,
    path_parameter,
    public_operation,
    query_parameter,
    read_operation,
    READ_ERRORS,
    UNTIL,
    write_operation,
)
from lms_events.openapi_plans import plan_operations
from lms_events.openapi_schemas import (
    component_schemas,
    JSON,
    OPENAPI_VERSION,
    READ_TOKEN,
    ref,
    SECURITY_SCHEMES,
)


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
        ("POST", "/v1/batch"): write_operation("Post a batch of events", "IntakeAnswer", events_body(single=False)),
        ("POST", "/v1/events"): write_operation("Post one event", "IntakeAnswer", events_body(single=True)),
        ("POST", "/v1/domain-events"): write_operation(
            "Post domain events (UserCreated, CourseCreated, ...) to the domain topics", "DomainAnswer", domain_body
        ),
        ("PUT", "/v1/consent/{user_id}"): with_erased_user(
            write_operation(
                "Set a user's consent per category and age band",
                "ConsentAnswer",
                {"required": True, "content": {JSON: {"schema": ref("Consent")}}},
                parameters=(path_parameter("user_id", "the platform's user id"),),
            )
        ),
        ("GET", "/v1/schemas"): public_operation("schemas", "The envelope, the taxonomy and every event type", "SchemasAnswer"),
        ("GET", "/v1/schemas/{event_type}"): {
            **public_operation("schemas", "One event type's schema", "EventSchemaAnswer", **{"404": error_response("unknown event type")}),
            "parameters": [path_parameter("event_type", "snake_case, camelCase, PascalCase or kebab-case")],
        },
        ("GET", "/health"): public_operation(
            "operations", "Broker, Redis, ClickHouse (and `up`'s stream worker)", "HealthAnswer", **{"503": answer_response("degraded", ref("HealthAnswer"))}
        ),
        ("GET", "/metrics"): {
            "tags": ["operations"],
            "summary": "Prometheus metrics of this process (text exposition format; README: Observability)",
            "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
        },
        ("GET", "/api/v1/dashboard"): read_operation(
            "The seven metrics over a window and the one before it, daily charts, a summary",
            [
                query_parameter("timeframe", {"enum": list(TIMEFRAMES), "default": DEFAULT_TIMEFRAME}, "the window's length"),
                UNTIL,
                {
                    "name": "filters",
                    "in": "query",
                    "required": False,
                    "description": "narrows the population, e.g. {\"courseId\": \"c1\"}",
                    "content": {JSON: {"schema": ref("DashboardFilters")}},
                },
            ],
            json_or_csv(
                "the dashboard",
                "DashboardAnswer",
                "one row a metric: metricType, value, previousValue, changePercentage, timeframe",
            ),
            entity=False,
        ),
        ("GET", "/api/v1/users/{userId}/analytics"): entity_operation("user", "userId", "UserAnalytics"),
        ("GET", "/api/v1/courses/{courseId}/analytics"): entity_operation("course", "courseId", "CourseAnalytics"),
        ("GET", "/api/v1/assessments/{assessmentId}/analytics"): entity_operation(
            "assessment", "assessmentId", "AssessmentAnalytics"
        ),
        ("GET", "/api/v1/learning-progress"): page_operation(
            "One row per enrollment as of `until`, by (userId, courseId)",
            [
                query_parameter("userId", IDENTIFIER, "only this user"),
                query_parameter("courseId", IDENTIFIER, "only this course"),
                query_parameter("status", {"enum": list(STATUSES)}, "only enrollments in this status"),
                UNTIL,
            ],
            "ProgressPage",
        ),
        ("GET", "/api/v1/events"): page_operation(
            "The events behind a figure, by (timestamp, eventId)",
            [
                *(query_parameter(name, IDENTIFIER, f"only events with this {name}") for name in FILTER_PARAMETERS.values()),
                instant_parameter("from", "from this instant on (a date is its UTC midnight)"),
                instant_parameter("to", "before this instant (a date is its UTC midnight)"),
            ],
            "EventPage",
        ),
        ("GET", "/api/v1/audit"): page_operation(
            "The audit trail of the organization, newest first (subscriber-admin, system-admin)",
            [
                *(query_parameter(name, IDENTIFIER, f"only rows with this {name}") for name in AUDIT_FILTERS),
                instant_parameter("from", "from this instant on (a date is its UTC midnight)"),
                instant_parameter("to", "before this instant (a date is its UTC midnight)"),
            ],
            "AuditPage",
        ),
        ("PUT", "/api/v1/me/consent"): with_erased_user({
            "tags": ["analytics"],
            "summary": "Change your own consent per category (read token); takes effect at the gateway at once",
            "security": [{READ_TOKEN: []}],
            "requestBody": {"required": True, "content": {JSON: {"schema": ref("Consent")}}},
            "responses": {"200": answer_response("your consent record", ref("ConsentAnswer")), **READ_ERRORS},
        }),
        ("GET", "/api/v1/me/data-usage"): read_operation(
            "What is collected about you, how long each kind is kept, and how many rows are held about you",
            [],
            answer_response("your data usage", ref("DataUsage")),
            entity=False,
        ),
        ("GET", "/api/v1/query/schema"): {
            "tags": ["analyst SQL"],
            "summary": "The data dictionary: the tables analyst SQL may read, every column described, and the limits",
            "security": [{READ_TOKEN: []}],
            "responses": {"200": answer_response("the dictionary", ref("QuerySchema")), **READ_ERRORS},
        },
        ("POST", "/api/v1/query"): analyst_query(),
        **{(method, path): clickhouse_http(method) for path in ("/clickhouse", "/clickhouse/") for method in ("GET", "POST")},
        ("GET", "/openapi.json"): {
            "tags": ["docs"],
            "summary": "This document",
            "responses": {"200": answer_response("OpenAPI 3.1", {"type": "object"})},
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


JOB_ID = path_parameter("jobId", "the report job's id")
_JOB = answer_response("the job", ref("ReportJob"))
_JOB_BODY = {"required": True, "content": {JSON: {"schema": ref("ReportJobRequest")}}}
_FILE = {
    "description": "the file, streamed, with Content-Disposition naming it",
    "content": {fmt.content_type: {"schema": {"type": "string", "format": "binary"}} for fmt in FORMATS.values()},
}


def report_operations() -> dict[tuple[str, str], dict[str, Any]]:
    jobs, job = "/api/v1/report-jobs", "/api/v1/report-jobs/{jobId}"
    return {
        ("POST", jobs): _report(
            "Create a report job: queued at once, or pending until scheduledFor", answer_response("accepted", ref("ReportJob")),
            status="202", body=_JOB_BODY,
        ),
        ("GET", jobs): _report(
            "The report jobs the caller may see, newest first (keyset pages)", answer_response("a page", ref("ReportJobPage")),
            parameters=(
                query_parameter("status", {"enum": list(lookups.values("report-status"))}, "only jobs in this status"),
                query_parameter("reportType", {"enum": list(lookups.values("report-type"))}, "only jobs of this report type"),
                query_parameter("requestedBy", IDENTIFIER, "the requester's user id"),
                query_parameter("priority", {"enum": list(lookups.values("report-priority"))}, "only jobs of this priority"),
                query_parameter("visibility", {"enum": list(lookups.values("report-visibility"))}, "only jobs of this visibility"),
                query_parameter("departmentId", IDENTIFIER, "only jobs of this department"),
                query_parameter("templateId", IDENTIFIER, "only jobs made from this template"),
                query_parameter("scheduleId", IDENTIFIER, "only jobs made by this schedule"),
                instant_parameter("createdAfter", "created at or after this instant (a date: its UTC midnight)"),
                instant_parameter("createdBefore", "created before this instant (a date: its UTC midnight)"),
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
            "Queue a failed job again", answer_response("queued", ref("ReportJob")), status="202",
            parameters=(JOB_ID,), **{"404": NOT_FOUND, "409": CONFLICT},
        ),
        ("GET", f"{job}/download"): _report(
            "Download a completed job's file", _FILE, parameters=(JOB_ID,),
            **{"404": NOT_FOUND, "409": CONFLICT, "410": GONE},
        ),
        ("GET", "/api/v1/reports"): _report("The report types generated here", answer_response("report types", ref("ReportTypeList"))),
        ("POST", "/api/v1/reports/{reportId}/generate"): _report(
            "Create a job of this report type (the body of POST /api/v1/report-jobs; reportType is the path's)",
            answer_response("accepted", ref("ReportJob")), status="202",
            parameters=(path_parameter("reportId", "a report-type lookup value"),),
            body={"required": False, "content": {JSON: {"schema": {"type": "object"}}}},
        ),
        ("GET", "/api/v1/reports/{reportId}/status/{jobId}"): _report(
            "A job of this report type", _JOB, parameters=(path_parameter("reportId", "a report-type lookup value"), JOB_ID),
            **{"404": NOT_FOUND},
        ),
        ("GET", "/api/v1/report-lookups"): _report(
            "Every lookup category and its allowed values", answer_response("lookup values", ref("LookupValues"))
        ),
    }  # fmt: skip


def document(routes: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The document of these (method, path) routes, in path order."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in sorted(routes, key=lambda route: (route[1], route[0])):
        operation = (
            operations().get((method, path))
            or report_operations().get((method, path))
            or plan_operations().get((method, path))
            or privacy_operations().get((method, path))
        )
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
