"""The gateway application factory: routes and resource lifecycle, nothing else.

Each external resource is one async context manager in `cleanup_ctx`:
acquired before `yield`, released after, torn down in reverse order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from aiohttp import web

from ingest import handlers, health
from ingest.body import MAX_BODY_BYTES
from ingest.intake import Intake
from ingest.keys import INTAKE, PUBLISHER, REDIS, SETTINGS, STORE
from ingest.publish import EventPublisher
from lms_events.admin import create_admin_app
from lms_events.clickhouse import ClickHouseStore, open_store
from lms_events.errors import ConfigError
from lms_events.settings import DEFAULT_REDIS_URL, Settings


def _kafka_publisher(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def kafka_publisher(app: web.Application) -> AsyncIterator[None]:
        assert settings.kafka_bootstrap_servers is not None
        publisher = EventPublisher(settings.kafka_bootstrap_servers, timeout_s=settings.kafka_publish_timeout_s)
        await publisher.start()
        app[PUBLISHER] = publisher
        yield
        await publisher.stop()

    return kafka_publisher


def _redis_pool(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def redis_pool(app: web.Application) -> AsyncIterator[None]:
        client = aioredis.from_url(settings.redis_url or DEFAULT_REDIS_URL, socket_timeout=2.0)
        app[REDIS] = client
        yield
        await client.aclose()

    return redis_pool


def _clickhouse_client(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def clickhouse_client(app: web.Application) -> AsyncIterator[None]:
        store = await open_store(settings)
        app[STORE] = store
        yield
        await store.close()

    return clickhouse_client


def create_app(
    settings: Settings, *, store: ClickHouseStore | None = None, admin_token: str | None = None
) -> web.Application:
    """The gateway. `store` is passed in when this process already owns ClickHouse
    (embedded `up`), which then also serves the admin API for the CLI."""
    if settings.kafka_bootstrap_servers is None:
        raise ConfigError("KAFKA_BOOTSTRAP_SERVERS", "the gateway needs a broker (`lms-events up` starts one)")
    # Headroom over the body limit so the limit check, not aiohttp, answers 413 with a reason.
    app = web.Application(
        client_max_size=MAX_BODY_BYTES * 2,
        middlewares=[handlers.error_middleware],
        # We decompress ourselves (ingest.body): bounded against zip bombs and
        # with JSON errors for unsupported encodings instead of aiohttp's text 400.
        handler_args={"auto_decompress": False},
    )
    app[SETTINGS] = settings
    app[INTAKE] = Intake()
    if store is not None:
        app[STORE] = store
    elif settings.clickhouse_url:
        app.cleanup_ctx.append(_clickhouse_client(settings))
    app.cleanup_ctx.append(_kafka_publisher(settings))
    app.cleanup_ctx.append(_redis_pool(settings))
    app.router.add_post("/v1/batch", handlers.post_batch)
    app.router.add_post("/v1/events", handlers.post_event)
    app.router.add_get("/health", health.get_health)
    if admin_token is not None:
        app.add_subapp("/admin/", create_admin_app(admin_token))
    return app
