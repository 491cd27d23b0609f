"""A job that fails is retried with backoff up to 3 times, then failed with
its error kept; a client's retry queues it again (failed -> queued).

The job asks for a grouping its report type does not have (course-completion
by week; the API answers 400 to it): what another version of the API could
have stored. A worker of the test's own, on a Redis database of its own, with
no backoff to wait for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from redis.asyncio import Redis

from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore
from lms_events.settings import Settings
from lms_events.tokens import Principal, Role
from reports import jobs
from reports.ledger import Ledger
from reports.models import Parameters, ReportJobRequest
from reports.queue import ReportQueue
from reports.submit import new_job, submit
from reports.worker import MAX_RETRIES, ReportWorker
from tests.support import eventually, unique_org


@pytest_asyncio.fixture
async def ledger(store: ClickHouseStore, settings: Settings, redis_url: str) -> AsyncIterator[tuple[Ledger, ReportQueue]]:
    url = redis_url.rsplit("/", 1)[0] + "/4"
    redis = Redis.from_url(url)
    await redis.flushdb()
    stop = asyncio.Event()
    worker = ReportWorker(settings.with_overrides(redis_url=url, reports_retry_base_s=0.0), store, redis)
    running = asyncio.create_task(worker.run(stop))
    yield Ledger(store, redis), ReportQueue(redis)
    stop.set()
    await running
    await redis.aclose()


async def test_a_failing_job_is_retried_then_failed_then_retried_by_hand(ledger: tuple[Ledger, ReportQueue]) -> None:
    book, queue = ledger
    org = unique_org()
    scope = Scope.of(Principal("admin", Role.SUBSCRIBER_ADMIN, org))
    stored = await submit(book, queue, new_job(ReportJobRequest(report_type="course-completion", name="not here", parameters=Parameters(group_by=["week"])), scope, org))

    async def current() -> str | None:
        found = await book.find(org, stored.job.id)
        return found.job.status if found else None

    await eventually(current, lambda status: status == jobs.FAILED)
    failed = await book.find(org, stored.job.id)
    assert failed is not None and failed.job.error is not None
    assert (failed.job.error.code, failed.job.error.retry_count) == ("generation-error", MAX_RETRIES)
    assert failed.job.error.last_retry_at is not None and failed.error_stack and "ValueError" in failed.error_stack
    history = [row["transition"] for row in await book.history(org, stored.job.id)]
    assert history == ["created", "queued", "running", *["retry-scheduled", "running"] * MAX_RETRIES, "failed"]

    again = await book.transition(failed, jobs.QUEUED, name="retried")
    await queue.enqueue(again.job.id, org, again.job.priority)
    await eventually(lambda: book.history(org, stored.job.id), lambda rows: [r["transition"] for r in rows].count("failed") == 2)
