"""Typed application keys of the gateway app."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from ingest.intake import Intake
from ingest.publish import EventPublisher
from lms_events.clickhouse import ClickHouseStore
from lms_events.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
INTAKE = web.AppKey("intake", Intake)
PUBLISHER = web.AppKey("publisher", EventPublisher)
REDIS = web.AppKey("redis", Redis)
# Only present when this process can reach ClickHouse (server, or it owns the chDB dir).
STORE = web.AppKey("store", ClickHouseStore)
