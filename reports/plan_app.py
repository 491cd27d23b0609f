"""Templates, schedules, the scheduler and the metadata API: routes and
resources, nothing else. `add_plans` is called by `add_reports`
(reports/app.py) after its own resources, whose ClickHouse store and Redis
it shares (through the ledger); the scheduler runs wherever the report
worker runs (`lms-events up`, `lms-events reports`), one active instance
among them (reports/scheduler.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from analytics.cache import AnswerCache
from lms_events.settings import Settings
from reports import metadata_handlers as metadata
from reports import schedule_handlers as schedules
from reports import template_handlers as templates
from reports.keys import LEDGER
from reports.plan_keys import METADATA_CACHE, METADATA_TTL_S, RUNS, SCHEDULES, TEMPLATES
from reports.schedule_runs import RunLog
from reports.scheduler import Scheduler
from reports.schedules import ScheduleStore
from reports.templates import TemplateStore

PREFIX = "/api/v1"


def add_plans(app: web.Application, settings: Settings, *, scheduler: bool) -> None:
    app[METADATA_TTL_S] = settings.cache_analytics_s

    async def resources(app: web.Application) -> AsyncIterator[None]:
        ledger = app[LEDGER]
        app[TEMPLATES] = TemplateStore(ledger.store)
        app[SCHEDULES] = ScheduleStore(ledger.store)
        app[RUNS] = RunLog(ledger.store)
        app[METADATA_CACHE] = AnswerCache(ledger.redis)
        stop = asyncio.Event()
        running = asyncio.create_task(Scheduler(ledger.store, ledger.redis).run(stop)) if scheduler else None
        yield
        stop.set()
        if running is not None:
            await running

    app.cleanup_ctx.append(resources)
    route = app.router
    base = f"{PREFIX}/report-templates"
    route.add_post(base, templates.create_template)
    route.add_get(base, templates.list_templates)
    route.add_get(f"{base}/{{templateId}}", templates.get_template)
    route.add_patch(f"{base}/{{templateId}}", templates.update_template)
    route.add_delete(f"{base}/{{templateId}}", templates.delete_template)
    route.add_post(f"{base}/{{templateId}}/duplicate", templates.duplicate_template)
    route.add_post(f"{base}/{{templateId}}/run", templates.run_template)
    base = f"{PREFIX}/report-schedules"
    route.add_post(base, schedules.create_schedule)
    route.add_get(base, schedules.list_schedules)
    route.add_get(f"{base}/{{scheduleId}}", schedules.get_schedule)
    route.add_patch(f"{base}/{{scheduleId}}", schedules.update_schedule)
    route.add_delete(f"{base}/{{scheduleId}}", schedules.delete_schedule)
    route.add_post(f"{base}/{{scheduleId}}/pause", schedules.pause_schedule)
    route.add_post(f"{base}/{{scheduleId}}/resume", schedules.resume_schedule)
    route.add_post(f"{base}/{{scheduleId}}/run", schedules.run_schedule)
    route.add_get(f"{base}/{{scheduleId}}/history", schedules.schedule_history)
    route.add_get(f"{base}/{{scheduleId}}/upcoming", schedules.upcoming_runs)
    base = f"{PREFIX}/report-metadata"
    route.add_get(f"{base}/report-types", metadata.report_types)
    route.add_get(f"{base}/output-formats", metadata.output_formats)
    route.add_get(f"{base}/lookups/{{category}}", metadata.lookup_category)
    route.add_get(f"{base}/event-types", metadata.event_types)
    route.add_get(f"{base}/filter-options/{{kind}}", metadata.filter_options)


