"""At most N analyst queries of one organization at a time, in this process.

Under `lms-events up` one process owns chDB, so this is the whole product's
count; `lms-events api` processes against a ClickHouse server each count
their own (the server's quota, from `analysts create`, is the fleet-wide one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from lms_events.errors import RateLimited

RETRY_AFTER_S = 1
# The key of a system-admin's unconfined queries.
EVERY_ORGANIZATION = "*"


class Slots:
    def __init__(self, per_organization: int) -> None:
        self._limit = per_organization
        self._running: dict[str, int] = {}

    @asynccontextmanager
    async def taken(self, organization_id: str | None) -> AsyncIterator[None]:
        key = organization_id if organization_id is not None else EVERY_ORGANIZATION
        running = self._running.get(key, 0)
        if running >= self._limit:
            raise RateLimited(
                f"{running} queries of this organization are running; the limit is {self._limit} at a time",
                retry_after_s=RETRY_AFTER_S,
                field="query_concurrency",
            )
        self._running[key] = running + 1
        try:
            yield
        finally:
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]
