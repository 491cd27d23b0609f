"""Typed application keys of the template, schedule and metadata APIs."""

from __future__ import annotations

from aiohttp import web

from analytics.cache import AnswerCache
from reports.schedule_runs import RunLog
from reports.schedules import ScheduleStore
from reports.templates import TemplateStore

TEMPLATES = web.AppKey("reports_templates", TemplateStore)
SCHEDULES = web.AppKey("reports_schedules", ScheduleStore)
RUNS = web.AppKey("reports_schedule_runs", RunLog)
METADATA_CACHE = web.AppKey("reports_metadata_cache", AnswerCache)
METADATA_TTL_S = web.AppKey("reports_metadata_ttl_s", float)
