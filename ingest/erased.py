"""Which users of a request were erased: their events get the status
`erased` and are neither published nor stored (lms_events/tombstones.py).

One MGET of the users' tombstone keys per request, never cached in the
process, so an erasure applies from the next request on. The intake
sends it before deciding the events and reads it after the dedup claim,
on the same pipelined connection: it adds no round trip (nor task) to a
request. A Redis that fails makes the gateway go on as if nobody was
erased: the stream sink drops those events anyway (it holds every
tombstone), so nothing of the person is stored; only their status says
`accepted` instead. At start the gateway copies the durable tombstones
(ClickHouse) into Redis, which may have restarted empty.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog
from redis.exceptions import RedisError

from ingest.redis_pipe import PipelinedRedis
from lms_events import keyset
from lms_events.clickhouse import ClickHouseStore
from lms_events.tombstones import TABLE, Digester, redis_key

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Lookup:
    """A lookup in flight: the users asked about, and the reply to come (None: not sent yet)."""

    organization_id: str
    users: list[str]
    keys: list[str]
    reply: asyncio.Future[Any] | None


class ErasedUsers:
    def __init__(self, redis: PipelinedRedis, digester: Digester, *, timeout_s: float = 2.0) -> None:
        self._redis = redis
        self._digester = digester
        self._timeout_s = timeout_s

    def ask(self, organization_id: str, user_ids: set[str]) -> Lookup | None:
        """Send the lookup now; its answer (`answer`) is read after the request's next Redis
        reply, so it costs the request no round trip of its own."""
        if not user_ids:
            return None
        users = list(user_ids)
        keys = [redis_key(organization_id, self._digester.digest(organization_id, user)) for user in users]
        return Lookup(organization_id, users, keys, self._redis.send_now("MGET", *keys))

    async def answer(self, lookup: Lookup | None) -> set[str]:
        if lookup is None:
            return set()
        try:
            if lookup.reply is None:
                values = await self._redis.execute("MGET", *lookup.keys)
            elif lookup.reply.done():  # the usual case: answered before the dedup claim
                values = lookup.reply.result()
            else:
                async with asyncio.timeout(self._timeout_s):
                    values = await lookup.reply
        except (RedisError, TimeoutError) as exc:
            log.warning("tombstones_redis_unavailable", error=str(exc), users=len(lookup.users))
            return set()
        return {user for user, value in zip(lookup.users, values, strict=True) if value is not None}

    async def among(self, organization_id: str, user_ids: set[str]) -> set[str]:
        return await self.answer(self.ask(organization_id, user_ids))

async def reload_tombstones(store: ClickHouseStore, redis: PipelinedRedis) -> int:
    loaded = 0
    async for rows in keyset.pages(store, "organization_id, digest, erasure_id", TABLE, "digest"):
        await redis.execute("MSET", *(part for row in rows for part in (redis_key(row["organization_id"], row["digest"]), row["erasure_id"])))
        loaded += len(rows)
    return loaded
