"""The gateway application factory: routes and resource lifecycle, nothing else.

Each external resource is one async context manager in `cleanup_ctx`:
acquired before `yield`, released after, torn down in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from ingest import handlers, health
from ingest.auth import KeyRing
from ingest.body import MAX_BODY_BYTES
from ingest.consent import ConsentStore, reload_consent
from ingest.cors import cors_middleware
from ingest.dedup import Deduplicator
from ingest.erased import ErasedUsers, reload_tombstones
from ingest.intake import Intake
from ingest.keys import (
    CONSENT, EMBEDDED_BROKER, ERASED, INTAKE, KEYRING, PUBLISHER, RATE_LIMITER, READ_SECRET, REDIS, SETTINGS, SPOOL, STORE,
)
from ingest.privacy import PrivacyFilter, pii_secret
from ingest.publish import EmbeddedBroker, EventPublisher
from ingest.ratelimit import RateLimiter
from ingest.redis_pipe import PipelinedRedis
from ingest.sampling import Sampler
from ingest.spool import Spool
from ingest.validation import EventValidator
from lms_events.admin import create_admin_app
from lms_events.lag import LagReader
from lms_events.metrics import add_metrics, add_probe
from lms_events.request_context import request_context
from lms_events.clickhouse import ClickHouseStore, open_store
from lms_events import tokens
from lms_events.errors import ConfigError, StorageError
from lms_events.retention import load_policies
from lms_events.tasks import cancel_and_wait
from lms_events.tombstones import Digester
from lms_events.settings import Settings

REDIS_TIMEOUT_S = 2.0
CONNECTION_NAME = "lms-events-gateway"

# Each resource reads its configuration from app[SETTINGS]: nothing is captured at import.


async def clickhouse(app: web.Application) -> AsyncIterator[None]:
    store = await open_store(app[SETTINGS])
    app[STORE] = store
    yield
    await store.close()


async def write_keys(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    keyring = KeyRing(app[STORE], environment=settings.environment)
    await keyring.refresh()
    app[KEYRING] = keyring
    refresher = asyncio.create_task(keyring.refresh_forever(settings.keys_refresh_s))
    yield
    await cancel_and_wait(refresher)


async def kafka_publisher(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.kafka_bootstrap_servers is not None
    broker = app.get(EMBEDDED_BROKER)
    publisher = EventPublisher(
        settings.kafka_bootstrap_servers,
        timeout_s=settings.kafka_publish_timeout_s,
        spool=app.get(SPOOL),
        topic_for=broker.topic_for if broker else None,
        broker_down=broker.down if broker else None,
    )
    await publisher.start()
    app[PUBLISHER] = publisher
    yield
    await publisher.stop()


async def redis_and_intake(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # Every command of the gateway (rate limits, consent, dedup, health) goes over one pipelined connection.
    assert settings.redis_url is not None  # checked by create_app
    redis = PipelinedRedis.from_url(settings.redis_url, timeout_s=REDIS_TIMEOUT_S, name=CONNECTION_NAME)
    app[REDIS] = redis
    app[CONSENT] = ConsentStore(redis)
    await reload_consent(app[STORE], app[CONSENT])
    await reload_tombstones(app[STORE], redis)
    app[RATE_LIMITER] = RateLimiter(
        redis, events_per_s=settings.rate_limit_events_per_s, burst=settings.rate_limit_burst
    )
    secret = pii_secret(settings.pii_secret, settings.data_dir)
    privacy = PrivacyFilter(secret)
    refresher = asyncio.create_task(_reload_retention_forever(app[STORE], privacy, settings.keys_refresh_s))
    app[ERASED] = ErasedUsers(redis, Digester(secret))
    app[INTAKE] = Intake(
        validator=EventValidator(
            max_future=timedelta(seconds=settings.max_future_s), late_after=timedelta(seconds=settings.late_after_s)
        ),
        sampler=Sampler.from_settings(settings),
        dedup=Deduplicator(redis, window_s=settings.dedup_window_s, local_entries=settings.dedup_local_entries),
        consent=app[CONSENT],
        privacy=privacy,
        erased=app[ERASED],
    )
    yield
    await cancel_and_wait(refresher)
    await redis.aclose()


async def _reload_retention_forever(store: ClickHouseStore, privacy: PrivacyFilter, every_s: float) -> None:
    """Organizations' retention policies, reloaded as often as write keys (changes apply within that)."""
    while True:
        with contextlib.suppress(StorageError):
            privacy.policies = await load_policies(store)
        await asyncio.sleep(every_s)


def create_app(
    settings: Settings,
    *,
    store: ClickHouseStore | None = None,
    admin_token: str | None = None,
    spool: Spool | None = None,
    embedded_broker: EmbeddedBroker | None = None,
) -> web.Application:
    """The gateway. `store` is passed in when this process already owns ClickHouse
    (embedded `up`), which then also serves the admin API for the CLI; `spool`
    when the broker is the embedded one, which forgets on a crash (and `embedded_broker`
    its topic generations and whether it is down)."""
    if settings.kafka_bootstrap_servers is None:
        raise ConfigError("KAFKA_BOOTSTRAP_SERVERS", "the gateway needs a broker (`lms-events up` starts one)")
    if store is None and settings.clickhouse_url is None:
        raise ConfigError("CLICKHOUSE_URL", "a separate gateway reads write keys from a ClickHouse server")
    if settings.redis_url is None:
        # Never a default URL: whatever answers on 6379 may be someone else's Redis.
        raise ConfigError(
            "REDIS_URL", "the gateway needs Redis for dedup, consent and rate limits (`lms-events up` embeds one)"
        )
    app = web.Application(
        # Headroom over the body limit so our check, not aiohttp, answers 413 with a reason.
        client_max_size=MAX_BODY_BYTES * 2,
        middlewares=[request_context, cors_middleware(settings.cors_origins), handlers.error_middleware],
        # We decompress ourselves (ingest.body): bounded against zip bombs and
        # with JSON errors for unsupported encodings instead of aiohttp's text 400.
        handler_args={"auto_decompress": False},
    )
    app[SETTINGS] = settings
    app[READ_SECRET] = tokens.signing_secret(settings)
    if spool is not None:
        app[SPOOL] = spool
    if embedded_broker is not None:
        app[EMBEDDED_BROKER] = embedded_broker
    if store is not None:
        app[STORE] = store
    else:
        app.cleanup_ctx.append(clickhouse)
    app.cleanup_ctx.append(write_keys)
    app.cleanup_ctx.append(kafka_publisher)
    app.cleanup_ctx.append(redis_and_intake)

    app.router.add_post("/v1/batch", handlers.post_batch)
    app.router.add_post("/v1/events", handlers.post_event)
    app.router.add_post("/v1/domain-events", handlers.post_domain_events)
    app.router.add_put("/v1/consent/{user_id}", handlers.put_consent)
    app.router.add_put("/api/v1/me/consent", handlers.put_my_consent)
    app.router.add_get("/v1/schemas", handlers.get_schemas)
    app.router.add_get("/v1/schemas/{event_type}", handlers.get_event_schema)
    app.router.add_get("/health", health.get_health)
    app[health.LAG] = (
        LagReader(settings.kafka_bootstrap_servers, embedded_broker.pipeline_topics)
        if embedded_broker is not None
        else LagReader(settings.kafka_bootstrap_servers)
    )
    add_probe(app, "consumer_lag", app[health.LAG].probe)
    add_metrics(app)
    if admin_token is not None:
        app.add_subapp("/admin/", create_admin_app(admin_token))
    return app
