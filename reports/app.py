"""The report API and worker: routes and resource lifecycle, nothing else.

`add_reports` wires report jobs into an application: the gateway's under
`lms-events up` (which also runs the worker, chDB having one owner), or
the API's under `lms-events api`. `run_worker` (`lms-events reports`)
runs the worker alone. Each resource is one async context manager in
`cleanup_ctx`, released in reverse order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from aiohttp import web
from redis.asyncio import Redis

from analytics.keys import AUDIT, JWT_SECRET
from lms_events.audit import AuditTrail
from lms_events.clickhouse import ClickHouseStore, open_store
from lms_events.errors import ConfigError
from lms_events.metrics import add_probe, serving
from lms_events.secret_files import load_or_create_secret
from lms_events.settings import Settings
from lms_events.tokens import SECRET_FILE
from reports import handlers
from reports.delivery import Delivering
from reports.keys import LEDGER, QUEUE, STORAGE
from reports.ledger import Ledger
from reports.plan_app import add_plans
from reports.scheduler import Scheduler
from reports.published import ReportPublisher
from reports.queue import ReportQueue
from reports.storage import ReportFiles
from reports.worker import CLAIM_BLOCK_MS, ReportWorker

PREFIX = "/api/v1"
# Above the worker's blocking XREADGROUP, so a quiet queue is not a timeout.
REDIS_TIMEOUT_S = 2 * CLAIM_BLOCK_MS / 1000 + 1


def report_redis(settings: Settings) -> Redis:
    if settings.redis_url is None:
        raise ConfigError("REDIS_URL", "report jobs are queued in Redis")
    return Redis.from_url(settings.redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)


def add_reports(
    app: web.Application, settings: Settings, *, store: ClickHouseStore | None = None, worker: bool | None = None
) -> None:
    """Routes of the report API; with `worker` (default: settings.reports_worker) the worker runs in the app too."""
    if JWT_SECRET not in app:
        app[JWT_SECRET] = load_or_create_secret(settings.jwt_secret, settings.data_dir, SECRET_FILE)
    app[STORAGE] = ReportFiles(settings)
    run_worker = settings.reports_worker if worker is None else worker

    async def resources(app: web.Application) -> AsyncIterator[None]:
        owned = store is None
        clickhouse = await open_store(settings) if store is None else store
        redis = report_redis(settings)
        app[LEDGER] = Ledger(clickhouse, redis)
        app[QUEUE] = ReportQueue(redis)
        stop = asyncio.Event()
        running = None
        async with AsyncExitStack() as own:
            if AUDIT not in app:  # downloads are audited; the analytics API (add_api) keeps the trail when it is there
                app[AUDIT] = await own.enter_async_context(AuditTrail(clickhouse).running())
            publisher = await own.enter_async_context(publishing(settings))
            if run_worker:
                delivering = Delivering(clickhouse, publisher)
                running = asyncio.create_task(ReportWorker(settings, clickhouse, redis, delivering).run(stop))
            yield
            stop.set()
            if running is not None:
                await running
        await redis.aclose()
        if owned:
            await clickhouse.close()

    app.cleanup_ctx.append(resources)
    add_probe(app, "report_queue", lambda: app[QUEUE].probe())
    jobs = f"{PREFIX}/report-jobs"
    app.router.add_post(jobs, handlers.create_job)
    app.router.add_get(jobs, handlers.list_jobs)
    app.router.add_get(f"{jobs}/{{jobId}}", handlers.get_job)
    app.router.add_delete(f"{jobs}/{{jobId}}", handlers.delete_job)
    app.router.add_post(f"{jobs}/{{jobId}}/cancel", handlers.cancel_job)
    app.router.add_post(f"{jobs}/{{jobId}}/retry", handlers.retry_job)
    app.router.add_get(f"{jobs}/{{jobId}}/download", handlers.download)
    app.router.add_get(f"{PREFIX}/reports", handlers.report_types)
    app.router.add_post(f"{PREFIX}/reports/{{reportId}}/generate", handlers.generate_report)
    app.router.add_get(f"{PREFIX}/reports/{{reportId}}/status/{{jobId}}", handlers.report_status)
    app.router.add_get(f"{PREFIX}/report-lookups", handlers.lookup_values)
    add_plans(app, settings, scheduler=run_worker)  # templates, schedules, metadata; the scheduler beside the worker


async def run_worker(settings: Settings, store: ClickHouseStore, stop: asyncio.Event) -> None:
    """The worker and the scheduler alone (`lms-events reports`), until `stop` is set."""
    redis = report_redis(settings)
    probes = {"report_queue": ReportQueue(redis).probe}
    try:
        async with publishing(settings) as publisher, serving(settings.gateway_host, settings.metrics_port, probes):
            worker = ReportWorker(settings, store, redis, Delivering(store, publisher))
            await asyncio.gather(worker.run(stop), Scheduler(store, redis).run(stop))
    finally:
        await redis.aclose()


@asynccontextmanager
async def publishing(settings: Settings) -> AsyncIterator[ReportPublisher | None]:
    """ReportGenerated goes to the configured broker; without one (a lone `reports` role) nowhere."""
    if settings.kafka_bootstrap_servers is None:
        yield None
        return
    publisher = ReportPublisher(settings.kafka_bootstrap_servers)
    try:
        yield publisher
    finally:
        await publisher.stop()
