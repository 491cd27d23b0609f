"""Typed application keys of analyst SQL."""

from __future__ import annotations

from aiohttp import web

from analytics.analyst.catalog import Catalog
from analytics.analyst.guard import Limits
from analytics.analyst.slots import Slots

CATALOG = web.AppKey("analyst_catalog", Catalog)
LIMITS = web.AppKey("analyst_limits", Limits)
SLOTS = web.AppKey("analyst_slots", Slots)
