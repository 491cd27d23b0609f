"""OpenAPI operations of report templates, schedules and metadata
(reports/plan_app.py), beside lms_events/openapi.py's report jobs."""

from __future__ import annotations

from functools import cache
from typing import Any

from lms_events.openapi_parts import (
    CURSOR,
    IDENTIFIER,
    LIMIT,
    NOT_FOUND,
    ORGANIZATION,
    READ_ERRORS,
    answer_response,
    error_response,
    path_parameter,
    query_parameter,
)
from lms_events.openapi_schemas import JSON, READ_TOKEN, ref
from reports import lookups
from reports.metadata import FILTER_KINDS
from reports.schedule_handlers import DEFAULT_UPCOMING, MAX_UPCOMING

TEMPLATE_ID = path_parameter("templateId", "the template's id (system templates: system-<report type>)")
SCHEDULE_ID = path_parameter("scheduleId", "the schedule's id")
BOOLEAN = {"enum": ["true", "false"]}
FORBIDDEN_CHANGE = error_response("only the owner or an administrator may change it (system templates: nobody)")


def _operation(
    tag: str, summary: str, ok: dict[str, Any], *, status: str = "200", parameters: tuple[dict[str, Any], ...] = (),
    body: str | None = None, body_required: bool = True, **errors: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    operation: dict[str, Any] = {
        "tags": [tag],
        "summary": summary,
        "security": [{READ_TOKEN: []}],
        "parameters": [*parameters, ORGANIZATION],
        "responses": {status: ok, **READ_ERRORS, **errors},
    }
    if body is not None:
        schema = ref(body) if body_required else {"type": "object", "description": f"fields of {body}"}
        operation["requestBody"] = {"required": body_required, "content": {JSON: {"schema": schema}}}
    return operation


def _answer(model: str, description: str = "ok") -> dict[str, Any]:
    return answer_response(description, ref(model))


@cache
def plan_operations() -> dict[tuple[str, str], dict[str, Any]]:
    t, one = "/api/v1/report-templates", "/api/v1/report-templates/{templateId}"
    s, sched = "/api/v1/report-schedules", "/api/v1/report-schedules/{scheduleId}"
    m = "/api/v1/report-metadata"
    found = {"404": NOT_FOUND}
    changed = {"403": FORBIDDEN_CHANGE, "404": NOT_FOUND}
    job = _answer("ReportJob", "the job, queued")
    return {
        ("POST", t): _operation("report templates", "Create a template (checked as the job it creates)",
                                _answer("ReportTemplate", "created"), status="201", body="ReportTemplateRequest"),
        ("GET", t): _operation(
            "report templates", "Templates the caller may see, system ones included, by (name, id) (keyset pages)",
            _answer("ReportTemplatePage", "a page"),
            parameters=(
                query_parameter("reportType", {"enum": list(lookups.values("report-type"))}, "only this report type"),
                query_parameter("ownerId", IDENTIFIER, "only this owner's"),
                query_parameter("visibility", {"enum": list(lookups.values("report-visibility"))}, "only this visibility"),
                query_parameter("tag", IDENTIFIER, "only templates with this tag"),
                query_parameter("search", IDENTIFIER, "names containing this (case-insensitive)"),
                query_parameter("system", BOOLEAN, "only system templates (true) or only saved ones (false)"),
                LIMIT, CURSOR,
            ),
        ),
        ("GET", one): _operation("report templates", "One template", _answer("ReportTemplate"), parameters=(TEMPLATE_ID,), **found),
        ("PATCH", one): _operation("report templates", "Change a template: the fields given replace its own (owner or administrator)",
                                   _answer("ReportTemplate"), parameters=(TEMPLATE_ID,), body="ReportTemplateRequest",
                                   body_required=False, **changed),
        ("DELETE", one): _operation("report templates", "Delete a template (owner or administrator)", {"description": "deleted"},
                                    status="204", parameters=(TEMPLATE_ID,), **changed),
        ("POST", f"{one}/duplicate"): _operation(
            "report templates", "A private copy owned by the caller; the body may change any field",
            _answer("ReportTemplate", "created"), status="201", parameters=(TEMPLATE_ID,), body="ReportTemplateRequest",
            body_required=False, **found),
        ("POST", f"{one}/run"): _operation(
            "report templates", "Run now: a job from the template, the body's job-request fields over its defaults",
            job, status="202", parameters=(TEMPLATE_ID,), body="ReportJobRequest", body_required=False, **found),
        ("POST", s): _operation("report schedules", "Create a schedule (a bad cronExpression, timezone or frequency is a 400 naming it)",
                                _answer("ReportSchedule", "created"), status="201", body="ReportScheduleRequest", **found),
        ("GET", s): _operation(
            "report schedules", "Schedules the caller may see, by (name, id) (keyset pages)", _answer("ReportSchedulePage", "a page"),
            parameters=(
                query_parameter("enabled", BOOLEAN, "only enabled (true) or paused (false) schedules"),
                query_parameter("templateId", IDENTIFIER, "only schedules of this template"),
                query_parameter("ownerId", IDENTIFIER, "only this owner's"),
                LIMIT, CURSOR,
            ),
        ),
        ("GET", sched): _operation("report schedules", "One schedule with its last and next run", _answer("ReportSchedule"),
                                   parameters=(SCHEDULE_ID,), **found),
        ("PATCH", sched): _operation("report schedules", "Change a schedule: the fields given replace its own (owner or administrator)",
                                     _answer("ReportSchedule"), parameters=(SCHEDULE_ID,), body="ReportScheduleRequest",
                                     body_required=False, **changed),
        ("DELETE", sched): _operation("report schedules", "Delete a schedule (its jobs stay)", {"description": "deleted"},
                                      status="204", parameters=(SCHEDULE_ID,), **changed),
        ("POST", f"{sched}/pause"): _operation("report schedules", "Pause: no runs until resumed", _answer("ReportSchedule"),
                                               parameters=(SCHEDULE_ID,), **changed),
        ("POST", f"{sched}/resume"): _operation("report schedules", "Resume: runs missed while paused are not run",
                                                _answer("ReportSchedule"), parameters=(SCHEDULE_ID,), **changed),
        ("POST", f"{sched}/run"): _operation("report schedules", "Run now (recorded as a manual run; the timing is unchanged)",
                                             job, status="202", parameters=(SCHEDULE_ID,), **changed),
        ("GET", f"{sched}/history"): _operation("report schedules", "The schedule's runs, newest first, with each job's status now",
                                                _answer("ScheduleRunPage", "a page"), parameters=(SCHEDULE_ID, LIMIT, CURSOR), **found),
        ("GET", f"{sched}/upcoming"): _operation(
            "report schedules", "The next N run instants, in UTC and in the schedule's timezone", _answer("UpcomingRuns"),
            parameters=(SCHEDULE_ID, query_parameter(
                "count", {"type": "integer", "minimum": 1, "maximum": MAX_UPCOMING, "default": DEFAULT_UPCOMING}, "how many")),
            **found),
        ("GET", f"{m}/report-types"): _operation("report metadata", "Every report type: parameters, measures, dimensions, columns",
                                                 _answer("ReportTypeMetadataList")),
        ("GET", f"{m}/output-formats"): _operation("report metadata", "Every output format with content type and extension",
                                                   _answer("OutputFormatList")),
        ("GET", f"{m}/lookups/{{category}}"): _operation(
            "report metadata", "One lookup category's values and descriptions", _answer("LookupCategory"),
            parameters=(path_parameter("category", f"one of {', '.join(lookups.categories())}"),), **found),
        ("GET", f"{m}/event-types"): _operation("report metadata", "The taxonomy's event types with category and group",
                                                _answer("EventTypeList")),
        ("GET", f"{m}/filter-options/{{kind}}"): _operation(
            "report metadata", "Departments, courses, classes or learners the caller may see, by id (keyset pages)",
            _answer("FilterOptionPage", "a page"),
            parameters=(path_parameter("kind", f"one of {', '.join(FILTER_KINDS)}"),
                        query_parameter("search", IDENTIFIER, "ids containing this (case-insensitive)"), LIMIT, CURSOR),
            **found),
    }  # fmt: skip
