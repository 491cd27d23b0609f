"""The analytics API: routes and resource lifecycle, nothing else.

`add_api` wires the read side into an application: into the gateway's
under `lms-events up` (one process owns chDB), or into its own under
`lms-events api` (against a ClickHouse server, scaled out on its own).
Each resource is one async context manager in `cleanup_ctx`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web
from redis.asyncio import Redis

from analytics import handlers
from ingest.handlers import error_middleware
from analytics.cache import AnswerCache
from analytics.invalidation import following
from analytics.analyst.app import add_query_api
from analytics.keys import AUDIT, CACHE, JWT_SECRET, PREFIX, SETTINGS, STORE
from lms_events.audit import AuditTrail
from lms_events.clickhouse import ClickHouseStore, open_store
from lms_events.docs import add_docs
from lms_events.errors import ConfigError
from lms_events.metrics import add_metrics
from lms_events.request_context import request_context
from lms_events.settings import Settings
from lms_events.tokens import signing_secret
from privacy.app import add_privacy

REDIS_TIMEOUT_S = 2.0


async def _clickhouse(app: web.Application) -> AsyncIterator[None]:
    store = await open_store(app[SETTINGS])
    app[STORE] = store
    yield
    await store.close()


async def _answer_cache(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.redis_url is None:
        raise ConfigError("REDIS_URL", "the analytics API caches answers in Redis")
    redis = Redis.from_url(settings.redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
    app[CACHE] = AnswerCache(redis)
    if settings.kafka_bootstrap_servers is None:
        yield
    else:
        async with following(settings.kafka_bootstrap_servers, redis):
            yield
    await redis.aclose()


async def _audit_trail(app: web.Application) -> AsyncIterator[None]:
    async with AuditTrail(app[STORE]).running() as trail:
        app[AUDIT] = trail
        yield


def add_api(app: web.Application, settings: Settings, *, store: ClickHouseStore | None = None) -> None:
    app[SETTINGS] = settings
    app[JWT_SECRET] = signing_secret(settings)
    if store is not None:
        app[STORE] = store
    else:
        app.cleanup_ctx.append(_clickhouse)
    app.cleanup_ctx.append(_audit_trail)
    app.cleanup_ctx.append(_answer_cache)
    app.router.add_get(f"{PREFIX}/dashboard", handlers.get_dashboard)
    app.router.add_get(f"{PREFIX}/users/{{userId}}/analytics", handlers.get_user_analytics)
    app.router.add_get(f"{PREFIX}/courses/{{courseId}}/analytics", handlers.get_course_analytics)
    app.router.add_get(f"{PREFIX}/assessments/{{assessmentId}}/analytics", handlers.get_assessment_analytics)
    app.router.add_get(f"{PREFIX}/learning-progress", handlers.get_learning_progress)
    app.router.add_get(f"{PREFIX}/events", handlers.get_events)
    app.router.add_get(f"{PREFIX}/audit", handlers.get_audit)
    app.router.add_get(f"{PREFIX}/me/data-usage", handlers.get_my_data_usage)
    add_privacy(app)


def create_api_app(settings: Settings, *more: Callable[[web.Application], None]) -> web.Application:
    """The API in a process of its own (`lms-events api`), with the read-side parts in `more`
    (the entry point passes the report API); its /openapi.json describes what it serves."""
    app = web.Application(middlewares=[request_context, error_middleware])
    add_metrics(app)
    add_api(app, settings)
    add_query_api(app)
    for add in more:
        add(app)
    add_docs(app)
    return app
