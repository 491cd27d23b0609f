"""Typed application keys of the analytics API, and the prefix of its paths."""

from __future__ import annotations

from aiohttp import web

from analytics.cache import AnswerCache
from lms_events.audit import AuditTrail
from lms_events.clickhouse import ClickHouseStore
from lms_events.settings import Settings

PREFIX = "/api/v1"

SETTINGS = web.AppKey("analytics_settings", Settings)
STORE = web.AppKey("analytics_store", ClickHouseStore)
CACHE = web.AppKey("analytics_cache", AnswerCache)
JWT_SECRET = web.AppKey("analytics_jwt_secret", bytes)
AUDIT = web.AppKey("analytics_audit", AuditTrail)
