"""HTTP handlers of report templates (report seed API-ISS-031): token ->
scope -> body checked as the job it stands for -> `report_templates`.

Create, list (filters, name search, tag, keyset pages by (name, id)),
get, update (owner or administrator), delete, duplicate, and run now: a
job through the same checks and submit path as POST /api/v1/report-jobs,
from the template's fields with the request's laid over them.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from analytics.handlers import scope_of
from analytics.params import boolean, identifier, limit
from reports import lookups
from reports.bodies import converted, deep_merged, json_object
from reports.handlers import json_answer
from reports.keys import LEDGER, QUEUE
from reports.models import ReportJobRequest
from reports.plan_keys import TEMPLATES
from reports.plan_models import ReportTemplate, ReportTemplatePage, ReportTemplateRequest
from reports.schedules import runnable
from reports.submit import new_job, submit
from reports.templates import TemplateFilters, checked, job_fields, request_of


def _template_id(request: web.Request) -> str:
    template_id = identifier(request.match_info["templateId"], "templateId")
    assert template_id is not None
    return template_id


async def create_template(request: web.Request) -> web.Response:
    scope = scope_of(request)
    scope.require_organization()
    body = converted(await json_object(request), ReportTemplateRequest)
    template = await request.app[TEMPLATES].create(scope, checked(body, scope))
    return json_answer(template, 201)


async def list_templates(request: web.Request) -> web.Response:
    scope = scope_of(request)
    query = request.query
    filters = TemplateFilters(
        report_type=lookups.check("report-type", query["reportType"], "reportType") if query.get("reportType") else None,
        owner_id=identifier(query.get("ownerId"), "ownerId"),
        visibility=lookups.check("report-visibility", query["visibility"], "visibility") if query.get("visibility") else None,
        tag=identifier(query.get("tag"), "tag"),
        search=identifier(query.get("search"), "search"),
        system=boolean(query, "system"),
    )  # fmt: skip
    items, next_cursor = await request.app[TEMPLATES].page(scope, filters, limit(query), query.get("cursor") or None)
    return json_answer(ReportTemplatePage(items=items, next_cursor=next_cursor))


async def get_template(request: web.Request) -> web.Response:
    return json_answer(await request.app[TEMPLATES].visible(scope_of(request), _template_id(request)))


def _changed(template: ReportTemplate, changes: dict[str, object]) -> ReportTemplateRequest:
    fields = {**msgspec.to_builtins(request_of(template)), **changes}
    return converted(fields, ReportTemplateRequest)


async def update_template(request: web.Request) -> web.Response:
    """PATCH: the fields given replace the template's (`parameters` and `output` whole)."""
    scope = scope_of(request)
    store = request.app[TEMPLATES]
    template = await store.managed(scope, _template_id(request))
    changed = checked(_changed(template, await json_object(request)), scope)
    saved = await store.save(ReportTemplate(**{**msgspec.structs.asdict(template), **msgspec.structs.asdict(changed)}))
    return json_answer(saved)


async def delete_template(request: web.Request) -> web.Response:
    scope = scope_of(request)
    store = request.app[TEMPLATES]
    await store.delete(await store.managed(scope, _template_id(request)))
    return web.Response(status=204)


async def duplicate_template(request: web.Request) -> web.Response:
    """A copy owned by the caller, private unless the body says otherwise; the body may change any field."""
    scope = scope_of(request)
    store = request.app[TEMPLATES]
    template = await store.visible(scope, _template_id(request))
    changes = {"name": f"Copy of {template.name}"[:200], "visibility": "private", "departmentId": None}
    copy = checked(_changed(template, {**changes, **await json_object(request, optional=True)}), scope)
    return json_answer(await store.create(scope, copy), 201)


async def run_template(request: web.Request) -> web.Response:
    """A job from the template, the body's job-request fields over its defaults (objects merged, lists replaced)."""
    scope = scope_of(request)
    organization_id = scope.require_organization()
    template = await request.app[TEMPLATES].visible(scope, _template_id(request))
    body = await json_object(request, optional=True)
    fields = deep_merged(job_fields(template), {key: value for key, value in body.items() if key != "templateId"})
    job_request = runnable(converted(fields, ReportJobRequest), scope)
    stored = await submit(request.app[LEDGER], request.app[QUEUE], new_job(job_request, scope, organization_id))
    return json_answer(stored.job, 202)
