"""Typed application keys of the gateway app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ingest.auth import KeyRing
from ingest.consent import ConsentStore
from ingest.erased import ErasedUsers
from ingest.intake import Intake
from ingest.publish import EmbeddedBroker, EventPublisher
from ingest.ratelimit import RateLimiter
from ingest.redis_pipe import PipelinedRedis
from ingest.spool import Spool
from lms_events.clickhouse import ClickHouseStore
from lms_events.settings import Settings

if TYPE_CHECKING:
    from ingest.health import StreamWorkerState  # health reads these keys

SETTINGS = web.AppKey("settings", Settings)
PUBLISHER = web.AppKey("publisher", EventPublisher)
REDIS = web.AppKey("redis", PipelinedRedis)
STORE = web.AppKey("store", ClickHouseStore)
KEYRING = web.AppKey("keyring", KeyRing)
CONSENT = web.AppKey("consent", ConsentStore)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
INTAKE = web.AppKey("intake", Intake)
# Who was erased (lms_events/tombstones.py): their domain events and consent are refused too.
ERASED = web.AppKey("erased", ErasedUsers)
# HS256 secret of read tokens: a person changes their own consent with theirs.
READ_SECRET = web.AppKey("read_secret", bytes)
SPOOL = web.AppKey("spool", Spool)
EMBEDDED_BROKER = web.AppKey("embedded_broker", EmbeddedBroker)
# Under `up`: its stream worker, for /health (ingest/health.py).
STREAM_WORKER: web.AppKey[StreamWorkerState] = web.AppKey("stream_worker")
