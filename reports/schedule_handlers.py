"""HTTP handlers of report schedules (report seed API-ISS-032): token ->
scope -> schedule checked (timing, template or definition, the job it
creates) -> `report_schedules`; runs from `report_schedule_runs`.

Create, list, get (with its last and next run), update, delete, pause,
resume (occurrences missed while paused are not run), run now, history,
and upcoming: the next N instants in UTC and in the schedule's timezone.
A bad cron expression, timezone or frequency is a 400 naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from aiohttp import web

from analytics.handlers import scope_of
from analytics.params import boolean, identifier, iso_z, limit
from analytics.scope import Scope
from lms_events.errors import BadRequest, NotFound
from reports.bodies import converted, json_object
from reports.handlers import json_answer
from reports.keys import LEDGER, QUEUE
from reports.plan_keys import RUNS, SCHEDULES, TEMPLATES
from reports.plan_models import (
    Occurrence,
    ReportSchedule,
    ReportSchedulePage,
    ReportScheduleRequest,
    ScheduleRunPage,
    UpcomingRuns,
)
from reports.scheduler import manual_run
from reports.schedules import TIMING_FIELDS, checked, recurrence

MAX_UPCOMING = 100
DEFAULT_UPCOMING = 5
_REQUEST_FIELDS = tuple(field.name for field in msgspec.structs.fields(ReportScheduleRequest))


def _schedule_id(request: web.Request) -> str:
    schedule_id = identifier(request.match_info["scheduleId"], "scheduleId")
    assert schedule_id is not None
    return schedule_id


async def _resolved(
    request: web.Request, scope: Scope, body: ReportScheduleRequest, *, copy_template: bool = True
) -> ReportScheduleRequest:
    """The schedule checked, its template's definition copied in (on create, and when a change names a template)."""
    template = None
    if body.template_id is not None and copy_template:
        try:
            template = await request.app[TEMPLATES].visible(scope, body.template_id)
        except NotFound:
            raise NotFound("no report template with this id in your scope", field="templateId") from None
    return checked(body, scope, template)


async def _answer(request: web.Request, schedules: list[ReportSchedule]) -> list[ReportSchedule]:
    """Schedules with their last run (the run log) and next run (from now, when enabled)."""
    last: dict[str, tuple[str, str]] = {}
    for organization_id in {schedule.organization_id for schedule in schedules}:  # one, but a system-admin's
        ids = [schedule.id for schedule in schedules if schedule.organization_id == organization_id]
        last.update(await request.app[RUNS].last_runs(organization_id, ids))
    now = datetime.now(UTC)
    answered = []
    for schedule in schedules:
        last_at, last_job = last.get(schedule.id, (None, None))
        recurring = recurrence(schedule)
        upcoming = recurring.next_after(max(now, _at(schedule.active_since))) if schedule.enabled else None
        answered.append(
            msgspec.structs.replace(
                schedule, last_run_at=last_at, last_job_id=last_job, next_run_at=iso_z(upcoming) if upcoming else None,
                next_run_local=upcoming.astimezone(recurring.tz).isoformat() if upcoming else None,
            )  # fmt: skip
        )
    return answered


async def _one(request: web.Request, schedule: ReportSchedule, status: int = 200) -> web.Response:
    return json_answer((await _answer(request, [schedule]))[0], status)


async def create_schedule(request: web.Request) -> web.Response:
    scope = scope_of(request)
    scope.require_organization()
    body = await _resolved(request, scope, converted(await json_object(request), ReportScheduleRequest))
    return await _one(request, await request.app[SCHEDULES].create(scope, body), 201)


async def list_schedules(request: web.Request) -> web.Response:
    scope = scope_of(request)
    query = request.query
    filters = {
        column: value
        for column, name in (("template_id", "templateId"), ("owner_id", "ownerId"))
        if (value := identifier(query.get(name), name)) is not None
    }
    items, next_cursor = await request.app[SCHEDULES].page(
        scope, filters, boolean(query, "enabled"), limit(query), query.get("cursor") or None
    )
    return json_answer(ReportSchedulePage(items=await _answer(request, items), next_cursor=next_cursor))


async def get_schedule(request: web.Request) -> web.Response:
    return await _one(request, await request.app[SCHEDULES].visible(scope_of(request), _schedule_id(request)))


async def update_schedule(request: web.Request) -> web.Response:
    """PATCH: the fields given replace the schedule's; a new templateId copies that template's definition again."""
    scope = scope_of(request)
    store = request.app[SCHEDULES]
    schedule, owner = await store.managed(scope, _schedule_id(request))
    changes = await json_object(request)
    current = msgspec.to_builtins(ReportScheduleRequest(**{name: getattr(schedule, name) for name in _REQUEST_FIELDS}))
    new_template = changes.get("templateId") is not None
    if new_template and "definition" not in changes:
        current.pop("definition", None)
    if "definition" in changes and "templateId" not in changes:
        current.pop("templateId", None)
    merged_body = converted({**current, **changes}, ReportScheduleRequest)
    changed = await _resolved(request, owner, merged_body, copy_template=new_template)
    restart = any(getattr(changed, name) != getattr(schedule, name) for name in TIMING_FIELDS) or (
        changed.enabled and not schedule.enabled
    )
    merged = ReportSchedule(**{**msgspec.structs.asdict(schedule), **msgspec.structs.asdict(changed)})
    return await _one(request, await store.save(merged, owner, restart=restart))


async def delete_schedule(request: web.Request) -> web.Response:
    store = request.app[SCHEDULES]
    schedule, owner = await store.managed(scope_of(request), _schedule_id(request))
    await store.delete(schedule, owner)
    return web.Response(status=204)


async def _set_enabled(request: web.Request, enabled: bool) -> web.Response:
    store = request.app[SCHEDULES]
    schedule, owner = await store.managed(scope_of(request), _schedule_id(request))
    if schedule.enabled == enabled:
        return await _one(request, schedule)
    changed = msgspec.structs.replace(schedule, enabled=enabled)
    return await _one(request, await store.save(changed, owner, restart=enabled))


async def pause_schedule(request: web.Request) -> web.Response:
    return await _set_enabled(request, False)


async def resume_schedule(request: web.Request) -> web.Response:
    """Enabled again; occurrences count from now (those missed while paused are not run)."""
    return await _set_enabled(request, True)


async def run_schedule(request: web.Request) -> web.Response:
    schedule, owner = await request.app[SCHEDULES].managed(scope_of(request), _schedule_id(request))
    stored = await manual_run(request.app[LEDGER], request.app[QUEUE], request.app[RUNS], schedule, owner)
    return json_answer(stored.job, 202)


async def schedule_history(request: web.Request) -> web.Response:
    scope = scope_of(request)
    schedule = await request.app[SCHEDULES].visible(scope, _schedule_id(request))
    items, next_cursor = await request.app[RUNS].history(
        schedule.organization_id, schedule.id, limit(request.query), request.query.get("cursor") or None
    )
    return json_answer(ScheduleRunPage(items=items, next_cursor=next_cursor))


async def upcoming_runs(request: web.Request) -> web.Response:
    scope = scope_of(request)
    raw = request.query.get("count") or str(DEFAULT_UPCOMING)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_UPCOMING:
        raise BadRequest(f"count must be an integer from 1 to {MAX_UPCOMING}; got {raw!r}", field="count")
    schedule = await request.app[SCHEDULES].visible(scope, _schedule_id(request))
    recurring = recurrence(schedule)
    since = max(datetime.now(UTC), _at(schedule.active_since))
    items = [Occurrence(at=iso_z(due), local=due.astimezone(recurring.tz).isoformat()) for due in recurring.upcoming(since, int(raw))]  # type: ignore[arg-type]
    return json_answer(UpcomingRuns(schedule_id=schedule.id, timezone=schedule.timezone, enabled=schedule.enabled, items=items))


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
