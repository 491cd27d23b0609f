"""Erasure and export routes and their job runner, wired into the API
(analytics/app.py `add_api`): in `up`'s process, which owns chDB and runs
the stream sink (so an erasure can wait for the sink's batches), or in
`lms-events api` against a ClickHouse server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from analytics.keys import CACHE, PREFIX, SETTINGS, STORE
from ingest.privacy import PrivacyFilter, pii_secret
from lms_events import tombstones
from privacy import erasure, export, handlers
from privacy.context import PrivacyContext
from privacy.jobs import ERASURE, EXPORT, JobStore, Runner
from privacy.keys import CONTEXT, RUNNER


async def _runner(app: web.Application) -> AsyncIterator[None]:
    settings, store = app[SETTINGS], app[STORE]
    secret = pii_secret(settings.pii_secret, settings.data_dir)
    context = PrivacyContext(settings, store, app[CACHE].redis, PrivacyFilter(secret), tombstones.for_store(store, secret))
    app[CONTEXT] = context
    runner = Runner(
        JobStore(store),
        {ERASURE: partial(erasure.erase, context), EXPORT: partial(export.export, context)},
        {ERASURE: len(erasure.STEPS), EXPORT: len(export.STEPS)},
    )
    async with runner.running():
        app[RUNNER] = runner
        yield


def add_privacy(app: web.Application) -> None:
    """After the API's own resources (ClickHouse, Redis), whose keys it reads."""
    app.cleanup_ctx.append(_runner)
    app.router.add_post(f"{PREFIX}/users/{{userId}}/erasure", handlers.post_erasure)
    app.router.add_get(f"{PREFIX}/erasures/{{erasureId}}", handlers.get_erasure)
    app.router.add_post(f"{PREFIX}/me/data-export", handlers.post_my_export)
    app.router.add_post(f"{PREFIX}/users/{{userId}}/data-export", handlers.post_user_export)
    app.router.add_get(f"{PREFIX}/data-exports/{{exportId}}", handlers.get_export)
    app.router.add_get(f"{PREFIX}/data-exports/{{exportId}}/download", handlers.download_export)
