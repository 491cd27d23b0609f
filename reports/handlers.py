"""HTTP handlers of the report API (report seed API-ISS-030, and the
analytics seed's `/api/v1/reports` aliases): token -> scope -> request
checked against the lookup values -> ledger and queue -> the job.

Errors are the lms-events error tree: 400 a bad field (named, with the
allowed values), 401 token, 403 a role that may not, 404 not in the
caller's view, 409 an illegal transition, 410 an expired file.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import msgspec
from aiohttp import web

from analytics.handlers import record_audit, scope_of
from analytics.params import identifier, limit
from analytics.params import instant as instant_parameter
from analytics.scope import Scope
from lms_events.errors import BadRequest, Conflict, Gone, NotFound
from reports import jobs, lookups
from reports.definitions import DEFINITIONS
from reports.keys import LEDGER, QUEUE, STORAGE
from reports.ledger import StoredJob, instant, now_iso
from reports.models import (
    JobError,
    LookupValues,
    Model,
    ReportJobPage,
    ReportJobRequest,
    ReportTypeInfo,
    ReportTypeList,
)
from reports.submit import new_job, submit
from reports.visibility import require_manager
from reports.writers import FORMATS

_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
MAX_BODY_BYTES = 64 * 1024


def json_answer(answer: Model, status: int = 200) -> web.Response:
    """The answer checked against its own model's constraints (a drift fails here, not in a client), encoded."""
    checked = msgspec.convert(msgspec.to_builtins(answer), type(answer))
    return web.Response(body=msgspec.json.encode(checked), status=status, content_type="application/json")


def _answer(stored: StoredJob, status: int = 200) -> web.Response:
    return json_answer(stored.job, status)


async def _request_body(request: web.Request, overrides: dict[str, object] | None = None) -> ReportJobRequest:
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"a report job request is at most {MAX_BODY_BYTES} bytes")
    try:
        body = msgspec.json.decode(raw or b"{}")
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return msgspec.convert({**body, **(overrides or {})}, ReportJobRequest)
    except msgspec.ValidationError as exc:  # a DecodeError too: first
        match = _AT.search(str(exc))
        field = match.group("path") if match else None
        raise BadRequest(_AT.sub("", str(exc)), field=field or None) from None
    except msgspec.DecodeError:
        raise BadRequest("the body is not valid JSON") from None


async def _create(request: web.Request, overrides: dict[str, object] | None = None) -> web.Response:
    scope = scope_of(request)
    organization_id = scope.require_organization()
    job_request = jobs.checked_request(await _request_body(request, overrides), scope)
    if job_request.report_type not in DEFINITIONS:
        raise BadRequest(
            f"reportType {job_request.report_type} is not generated yet; available: {', '.join(DEFINITIONS)}",
            field="reportType",
        )
    stored = await submit(request.app[LEDGER], request.app[QUEUE], new_job(job_request, scope, organization_id))
    return _answer(stored, 202)


async def create_job(request: web.Request) -> web.Response:
    return await _create(request)


# GET /api/v1/report-jobs: query parameter -> (lookup category or None for an id, report_jobs column)
LIST_FILTERS = {
    "status": ("report-status", "status"),
    "reportType": ("report-type", "report_type"),
    "priority": ("report-priority", "priority"),
    "visibility": ("report-visibility", "visibility"),
    "requestedBy": (None, "requested_by"),
    "departmentId": (None, "department_id"),
    "templateId": (None, "template_id"),
    "scheduleId": (None, "schedule_id"),
}


async def list_jobs(request: web.Request) -> web.Response:
    scope = scope_of(request)
    query = request.query
    filters: dict[str, str] = {}
    for name, (category, column) in LIST_FILTERS.items():
        value = query.get(name)
        if category is not None and value:
            filters[column] = lookups.check(category, value, name)
        elif category is None and (value := identifier(value, name)):
            filters[column] = value
    created = (instant_parameter(query, "createdAfter"), instant_parameter(query, "createdBefore"))
    if created[0] is not None and created[1] is not None and created[0] >= created[1]:
        raise BadRequest("createdAfter must be before createdBefore", field="createdAfter")
    items, next_cursor = await request.app[LEDGER].page(scope, filters, limit(query), query.get("cursor") or None, created=created)
    return json_answer(ReportJobPage(items=[stored.job for stored in items], next_cursor=next_cursor))


async def _visible(request: web.Request, scope: Scope) -> StoredJob:
    job_id = identifier(request.match_info["jobId"], "jobId")
    assert job_id is not None
    return await request.app[LEDGER].visible(scope, job_id)


async def get_job(request: web.Request) -> web.Response:
    return _answer(await _visible(request, scope_of(request)))


async def cancel_job(request: web.Request) -> web.Response:
    scope = scope_of(request)
    stored = await _visible(request, scope)
    require_manager(scope, stored.job.requested_by)
    return _answer(await request.app[LEDGER].transition(stored, jobs.CANCELLED))


async def retry_job(request: web.Request) -> web.Response:
    """failed -> queued; the last error stays on the job, its automatic retries start over."""
    scope = scope_of(request)
    stored = await _visible(request, scope)
    require_manager(scope, stored.job.requested_by)
    error = msgspec.structs.replace(stored.job.error or JobError(), retry_count=0, last_retry_at=now_iso())
    stored = await request.app[LEDGER].transition(stored, jobs.QUEUED, name="retried", error=error)
    await request.app[QUEUE].enqueue(stored.job.id, stored.job.organization_id, stored.job.priority)
    return _answer(stored, 202)


async def delete_job(request: web.Request) -> web.Response:
    """The job and its file; a job not yet final is cancelled first (the worker stops on it)."""
    scope = scope_of(request)
    stored = await _visible(request, scope)
    require_manager(scope, stored.job.requested_by)
    ledger = request.app[LEDGER]
    if stored.job.status not in jobs.FINAL:
        try:
            stored = await ledger.transition(stored, jobs.CANCELLED)
        except Conflict:
            stored = await ledger.visible(scope, stored.job.id)  # it finished meanwhile
    if stored.job.output.storage is not None:
        await asyncio.to_thread(request.app[STORAGE].delete, stored.job.output.storage)
    await ledger.delete(stored)
    return web.Response(status=204)


def _filename(stored: StoredJob) -> str:
    job = stored.job
    extension = FORMATS[job.output.format].extension
    name = job.output.filename or f"{job.report_type}-{job.created_at[:10]}"
    return name if name.endswith(f".{extension}") else f"{name}.{extension}"


async def download(request: web.Request) -> web.StreamResponse:
    scope = scope_of(request)
    stored = await _visible(request, scope)
    job = stored.job
    if job.status != jobs.COMPLETED or job.output.storage is None:
        raise Conflict(f"the job is {job.status}; only a completed job has a file", field="status")
    expires = instant(job.expires_at)
    storage = request.app[STORAGE]
    size = await asyncio.to_thread(storage.size, job.output.storage)
    if (expires is not None and expires <= datetime.now(UTC)) or size is None:
        raise Gone("the report's file has expired; run the report again")
    await request.app[LEDGER].record_download(stored, scope.sub)
    # the audit trail too (report_downloads answers "who fetched this job"; audit_log "what did this person touch")
    record_audit(
        request, scope, "download.report", organization_id=job.organization_id, target=f"report-job:{job.id}",
        detail={"reportType": job.report_type, "format": job.output.format, "requestedBy": job.requested_by},
    )  # fmt: skip
    response = web.StreamResponse(
        headers={
            "Content-Type": FORMATS[job.output.format].content_type,
            "Content-Disposition": f'attachment; filename="{_filename(stored)}"',
            "Content-Length": str(size),
        }
    )
    await response.prepare(request)
    blocks = storage.read(job.output.storage)
    # file reads off the event loop, one block at a time
    while (block := await asyncio.to_thread(next, blocks, None)) is not None:
        await response.write(block)
    await response.write_eof()
    return response


async def report_types(request: web.Request) -> web.Response:
    """`GET /api/v1/reports`: the report types this product generates (alias of the seed)."""
    scope_of(request)
    described = lookups.descriptions("report-type")
    items = [
        ReportTypeInfo(
            id=d.id, description=described[d.id], columns=list(d.columns), measures=list(d.measures),
            dimensions=list(d.dimensions),
        )  # fmt: skip
        for d in DEFINITIONS.values()
    ]
    return json_answer(ReportTypeList(items=items))


async def generate_report(request: web.Request) -> web.Response:
    """`POST /api/v1/reports/{reportId}/generate`: a job of that type; the body is a job request without reportType."""
    report_id = request.match_info["reportId"]
    return await _create(request, {"reportType": report_id})


async def report_status(request: web.Request) -> web.Response:
    """`GET /api/v1/reports/{reportId}/status/{jobId}`: the job, if it is of that type."""
    stored = await _visible(request, scope_of(request))
    if stored.job.report_type != request.match_info["reportId"]:
        raise NotFound("no report job of this type with this id in your scope", field="jobId")
    return _answer(stored)


async def lookup_values(request: web.Request) -> web.Response:
    scope_of(request)
    categories = {name: list(values) for name, values in lookups.categories().items()}
    return json_answer(LookupValues(categories=categories))
