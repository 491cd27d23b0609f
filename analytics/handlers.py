"""HTTP handlers of the analytics API: token -> scope -> parameters ->
query (one module per figure family) -> JSON or CSV, through the cache.

Errors are the lms-events error tree (401 bad token, 403 a role that may
not, 404 unknown or out of scope, 400 a bad parameter naming it); the
error middleware turns them into JSON answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import msgspec
from aiohttp import web

from analytics import assessments, audit_trail, courses, dashboard, drilldown, learners, me, models, params, progress
from analytics.export import object_csv, pages_csv, wants_csv
from analytics.keys import AUDIT, CACHE, JWT_SECRET, SETTINGS, STORE
from analytics.scope import Scope
from ingest.privacy import truncate_ip
from lms_events.audit import AuditEntry
from lms_events.errors import BadRequest, NotFound
from lms_events.request_context import current_request_id
from lms_events.tokens import bearer_token, verify

def json_answer(payload: Any, model: type[models.Model]) -> web.Response:
    """The answer checked against its model (a drift fails here, not in a client) and encoded from it."""
    return web.Response(body=msgspec.json.encode(msgspec.convert(payload, model)), content_type="application/json")


def scope_of(request: web.Request) -> Scope:
    principal = verify(request.app[JWT_SECRET], bearer_token(request))
    return Scope.of(principal, params.identifier(request.query.get("organizationId"), "organizationId"))


def audit(request: web.Request, scope: Scope, read: str, subject_user_id: str | None) -> None:
    """Record a read of individual data (`read`: what was read; CSV makes it an export)."""
    action = f"{'export' if wants_csv(request) else 'read'}.{read}"
    detail = {name: value for name, value in request.query.items() if name not in ("cursor", "format")}
    record_audit(request, scope, action, subject_user_id=subject_user_id or "", detail=detail)


def record_audit(
    request: web.Request,
    scope: Scope,
    action: str,
    *,
    organization_id: str | None = None,
    subject_user_id: str = "",
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """One row of the audit trail about this request: who, role, organization (the caller's,
    unless what was touched belongs to another: a system-admin's), what, from where."""
    request.app[AUDIT].record(
        AuditEntry(
            organization_id=organization_id or scope.organization_id or "",
            actor=scope.sub,
            actor_role=str(scope.role),
            action=action,
            subject_user_id=subject_user_id,
            target=target or request.path,
            detail=detail or {},
            client_ip=truncate_ip(request.remote),
            request_id=current_request_id(),
        )
    )


def _query_key(request: web.Request) -> list[tuple[str, str]]:
    return sorted((name, value) for name, value in request.query.items() if name != "format")


async def _cached(request: web.Request, scope: Scope, ttl_s: float, compute: Callable[[], Awaitable[Any]]) -> Any:
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else request.path
    key = [request.match_info.get(name) for name in sorted(request.match_info)], _query_key(request)
    return await request.app[CACHE].get_or_compute(scope, route, key, ttl_s, compute)


def _found(answer: dict[str, Any] | None, what: str) -> dict[str, Any]:
    if answer is None:
        raise NotFound(f"no {what} with this id in your scope")
    return answer


async def get_dashboard(request: web.Request) -> web.StreamResponse:
    scope = scope_of(request)
    query = dashboard.Request(scope, params.window(request.query), params.filters(request.query))
    ttl = request.app[SETTINGS].cache_dashboard_s
    answer = await _cached(request, scope, ttl, lambda: dashboard.dashboard(request.app[STORE], query))
    if wants_csv(request):
        rows = [{key: metric[key] for key in ("metricType", "value", "previousValue", "changePercentage", "timeframe")} for metric in answer["metrics"]]
        return await object_csv(request, "dashboard.csv", rows)
    return json_answer(answer, models.DashboardAnswer)


async def _entity(
    request: web.Request,
    name: str,
    what: str,
    compute: Callable[[Any, Scope, str], Awaitable[dict[str, Any] | None]],
    model: type[models.Model],
) -> web.StreamResponse:
    scope = scope_of(request)
    entity_id = params.identifier(request.match_info[name], name)
    assert entity_id is not None
    ttl = request.app[SETTINGS].cache_analytics_s
    answer = _found(await _cached(request, scope, ttl, lambda: compute(request.app[STORE], scope, entity_id)), what)
    if what == "user":
        audit(request, scope, "user_analytics", entity_id)
    if wants_csv(request):
        return await object_csv(request, f"{what}-{entity_id}.csv", [answer])
    return json_answer(answer, model)


async def get_user_analytics(request: web.Request) -> web.StreamResponse:
    return await _entity(request, "userId", "user", learners.user_analytics, models.UserAnalytics)


async def get_course_analytics(request: web.Request) -> web.StreamResponse:
    return await _entity(request, "courseId", "course", courses.course_analytics, models.CourseAnalytics)


async def get_assessment_analytics(request: web.Request) -> web.StreamResponse:
    return await _entity(request, "assessmentId", "assessment", assessments.assessment_analytics, models.AssessmentAnalytics)


async def _list(
    request: web.Request,
    scope: Scope,
    filename: str,
    cursor_size: int,
    page: Callable[[list[Any] | None], Awaitable[dict[str, Any]]],
    model: type[models.Model],
) -> web.StreamResponse:
    if wants_csv(request):
        return await pages_csv(request, filename, page, lambda raw: params.decode_cursor({"cursor": raw}, cursor_size))  # type: ignore[return-value]
    after = params.decode_cursor(request.query, cursor_size)
    ttl = request.app[SETTINGS].cache_analytics_s
    return json_answer(await _cached(request, scope, ttl, lambda: page(after)), model)


async def get_learning_progress(request: web.Request) -> web.StreamResponse:
    scope = scope_of(request)
    scope.require_organization()
    query = request.query
    status = query.get("status") or None
    if status is not None and status not in progress.STATUSES:
        raise BadRequest(f"status must be one of {', '.join(progress.STATUSES)}, got {status!r}", field="status")
    base = progress.ProgressQuery(
        scope=scope,
        cut=params.cutoff(query),
        dropped_after_days=request.app[SETTINGS].dropped_after_days,
        limit=params.limit(query),
        user_id=params.identifier(query.get("userId"), "userId"),
        course_id=params.identifier(query.get("courseId"), "courseId"),
        status=status,
    )

    async def page(after: list[Any] | None) -> dict[str, Any]:
        return await progress.learning_progress(request.app[STORE], replace(base, after=after))

    audit(request, scope, "learning_progress", base.user_id)

    return await _list(request, scope, "learning-progress.csv", 2, page, models.ProgressPage)


async def get_events(request: web.Request) -> web.StreamResponse:
    scope = scope_of(request)
    scope.require_organization()
    query = request.query
    filters = {
        column: value
        for column, name in drilldown.FILTER_PARAMETERS.items()
        if (value := params.identifier(query.get(name), name)) is not None
    }
    start, end = params.instant(query, "from"), params.instant(query, "to")
    if start is not None and end is not None and start >= end:
        raise BadRequest("from must be before to", field="from")
    base = drilldown.EventsQuery(scope=scope, limit=params.limit(query), filters=filters, start=start, end=end)

    async def page(after: list[Any] | None) -> dict[str, Any]:
        return await drilldown.events(request.app[STORE], replace(base, after=after))

    audit(request, scope, "events", filters.get("user_id"))

    return await _list(request, scope, "events.csv", 2, page, models.EventPage)


async def get_audit(request: web.Request) -> web.StreamResponse:
    scope = scope_of(request)
    audit_trail.require_administrator(scope)
    query = request.query
    filters = {
        column: value
        for name, column in audit_trail.FILTER_PARAMETERS.items()
        if (value := params.identifier(query.get(name), name)) is not None
    }
    base = audit_trail.AuditQuery(
        scope=scope, limit=params.limit(query), filters=filters, start=params.instant(query, "from"), end=params.instant(query, "to")
    )

    async def page(after: list[Any] | None) -> dict[str, Any]:
        return await audit_trail.audit_entries(request.app[STORE], replace(base, after=after))

    if wants_csv(request):
        return await pages_csv(request, "audit.csv", page, lambda raw: params.decode_cursor({"cursor": raw}, 2))  # type: ignore[return-value]
    # Never cached: the trail must show the latest rows.
    return json_answer(await page(params.decode_cursor(query, 2)), models.AuditPage)


async def get_my_data_usage(request: web.Request) -> web.StreamResponse:
    scope = scope_of(request)
    answer = await me.data_usage(request.app[STORE], scope)
    audit(request, scope, "data_usage", scope.sub)
    return json_answer(answer, models.DataUsage)
