"""Answers cached in Redis, keyed by the caller's scope and the request.

A key holds the organization's generation: the stream worker bumps it
(`bump`) after each load that changed the organization's read models,
so a cached answer is never served once newer data is queryable; the
lifetime (60 s dashboard, 300 s the rest) bounds the rest. Keys of the
caller's scope (role, organization, sub, departments) never serve
another scope. A Redis that fails makes the API compute, not fail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from analytics.scope import Scope
from lms_events.metrics import CACHE_REQUESTS

log = structlog.get_logger(__name__)

PREFIX = "lms-events:analytics:"
ALL_ORGANIZATIONS = "*"


def generation_key(organization_id: str) -> str:
    return f"{PREFIX}generation:{organization_id}"


async def bump(redis: Redis, organization_ids: Iterable[str]) -> None:
    """Invalidate the cached answers of these organizations (and the all-organizations ones)."""
    organizations = set(organization_ids)
    if not organizations:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for organization_id in (*organizations, ALL_ORGANIZATIONS):
            pipe.incr(generation_key(organization_id))
        await pipe.execute()


class AnswerCache:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def _key(self, scope: Scope, route: str, request_key: Any) -> str:
        organization = scope.organization_id or ALL_ORGANIZATIONS
        generation = await self.redis.get(generation_key(organization)) or b"0"
        identity = orjson.dumps(
            [route, str(scope.role), organization, scope.sub, list(scope.departments), request_key],
            option=orjson.OPT_SORT_KEYS,
        )
        return f"{PREFIX}answer:{organization}:{generation.decode()}:{hashlib.sha256(identity).hexdigest()}"

    async def get_or_compute(
        self, scope: Scope, route: str, request_key: Any, ttl_s: float, compute: Callable[[], Awaitable[Any]]
    ) -> Any:
        if ttl_s <= 0:
            CACHE_REQUESTS.labels(route, "bypass").inc()
            return await compute()
        try:
            key = await self._key(scope, route, request_key)
            cached = await self.redis.get(key)
        except RedisError as exc:
            log.warning("analytics_cache_unavailable", error=str(exc))
            CACHE_REQUESTS.labels(route, "bypass").inc()
            return await compute()
        if cached is not None:
            CACHE_REQUESTS.labels(route, "hit").inc()
            return orjson.loads(cached)
        CACHE_REQUESTS.labels(route, "miss").inc()
        answer = await compute()
        try:
            await self.redis.set(key, orjson.dumps(answer), px=int(ttl_s * 1000))
        except RedisError as exc:
            log.warning("analytics_cache_unavailable", error=str(exc))
        return answer
