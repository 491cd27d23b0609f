"""Which users of a request were erased: their events get the status
`erased` and are neither published nor stored (lms_events/tombstones.py).

One MGET of the users' tombstone keys per request, never cached in the
process, so an erasure applies from the next request on. A Redis that
fails makes the gateway go on as if nobody was erased: the stream sink
drops those events anyway (it holds every tombstone), so nothing of the
person is stored; only their status says `accepted` instead.
"""

from __future__ import annotations

import structlog
from redis.exceptions import RedisError

from ingest.redis_pipe import PipelinedRedis
from lms_events import keyset
from lms_events.clickhouse import ClickHouseStore
from lms_events.tombstones import TABLE, Digester, redis_key

log = structlog.get_logger(__name__)


class ErasedUsers:
    def __init__(self, redis: PipelinedRedis, digester: Digester) -> None:
        self._redis = redis
        self._digester = digester

    async def among(self, organization_id: str, user_ids: set[str]) -> set[str]:
        if not user_ids:
            return set()
        users = list(user_ids)
        keys = [redis_key(organization_id, self._digester.digest(organization_id, user)) for user in users]
        try:
            values = await self._redis.execute("MGET", *keys)
        except RedisError as exc:
            log.warning("tombstones_redis_unavailable", error=str(exc), users=len(users))
            return set()
        return {user for user, value in zip(users, values, strict=True) if value is not None}



async def reload_tombstones(store: ClickHouseStore, redis: PipelinedRedis) -> int:
    loaded = 0
    async for rows in keyset.pages(store, "organization_id, digest, erasure_id", TABLE, "digest"):
        await redis.execute("MSET", *(part for row in rows for part in (redis_key(row["organization_id"], row["digest"]), row["erasure_id"])))
        loaded += len(rows)
    return loaded
