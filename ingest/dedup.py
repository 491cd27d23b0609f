"""Drop events whose event_id was already accepted within the window (24 h).

An in-process TTL cache answers repeats without a round trip; Redis
`SET NX EX` is the shared truth across gateway processes, all of a
batch's keys claimed in one script call. Keys are scoped by organization
so one tenant's ids can never suppress another's events.

If Kafka then refuses the batch, the handler releases the claims: a
client that retries after a 503 must not be told "duplicate" for events
that were never stored. If Redis is down, the gateway keeps accepting on
the local cache alone: ClickHouse replaces on event_id, so the worst case
is a duplicate row collapsed at merge, never a lost event.
"""

from __future__ import annotations

from cachetools import TTLCache
from redis.asyncio import Redis
from redis.exceptions import RedisError
import structlog

log = structlog.get_logger(__name__)

KEY_PREFIX = "lms:dedup:"

# One round trip for a whole batch: 1 = claimed now, 0 = seen before.
_CLAIM_SCRIPT = """
local claimed = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, '1', 'NX', 'EX', ARGV[1]) then claimed[i] = 1 else claimed[i] = 0 end
end
return claimed
"""


def dedup_key(organization_id: str, event_id: str) -> str:
    return f"{KEY_PREFIX}{organization_id}:{event_id}"


class Deduplicator:
    def __init__(self, redis: Redis, *, window_s: int, local_entries: int) -> None:
        self._redis = redis
        self._window_s = window_s
        self._seen: TTLCache[str, bool] = TTLCache(maxsize=local_entries, ttl=window_s)
        self._claim = redis.register_script(_CLAIM_SCRIPT)

    async def claim(self, keys: list[str]) -> list[bool]:
        """For each key: True if this is its first sighting (now claimed), False if a duplicate."""
        first = [False] * len(keys)
        candidates: dict[str, int] = {}
        for index, key in enumerate(keys):
            if key not in self._seen and key not in candidates:
                candidates[key] = index
        if not candidates:
            return first
        try:
            answers = await self._claim(keys=list(candidates), args=[self._window_s])
        except RedisError as exc:
            log.warning("dedup_redis_unavailable", error=str(exc), keys=len(candidates))
            answers = [1] * len(candidates)
        for (key, index), answer in zip(candidates.items(), answers, strict=True):
            if answer:
                first[index] = True
                self._seen[key] = True
        return first

    async def release(self, keys: list[str]) -> None:
        """Forget claims of events that were not stored after all."""
        for key in keys:
            self._seen.pop(key, None)
        if not keys:
            return
        try:
            await self._redis.delete(*keys)
        except RedisError as exc:
            log.error("dedup_release_failed", error=str(exc), keys=len(keys))
