"""`add_query_api`: analyst SQL on an application that already has the analytics API (`add_api`):
it shares its store, token secret and settings."""

from __future__ import annotations

from aiohttp import web

from analytics.analyst import clickhouse_http, handlers
from analytics.analyst.catalog import Catalog
from analytics.analyst.guard import Limits
from analytics.analyst.keys import CATALOG, LIMITS, SLOTS
from analytics.analyst.slots import Slots
from analytics.keys import PREFIX, SETTINGS, STORE

QUERY_PATH = f"{PREFIX}/query"
SCHEMA_PATH = f"{PREFIX}/query/schema"


async def _catalog(app: web.Application) -> None:
    # After add_api's cleanup contexts opened the store: the catalog reads this engine's functions.
    app[CATALOG] = await Catalog.load(app[STORE])


def add_query_api(app: web.Application) -> None:
    settings = app[SETTINGS]
    app[LIMITS] = Limits(settings.query_max_execution_s, settings.query_max_result_rows, settings.query_max_memory_bytes)
    app[SLOTS] = Slots(settings.query_concurrency)
    app.on_startup.append(_catalog)
    app.router.add_post(QUERY_PATH, handlers.post_query)
    app.router.add_get(SCHEMA_PATH, handlers.get_schema)
    for path in clickhouse_http.PATHS:
        app.router.add_get(path, clickhouse_http.handle)
        app.router.add_post(path, clickhouse_http.handle)
