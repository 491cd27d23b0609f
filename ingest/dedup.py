"""Drop events whose event_id was already accepted within the window (24 h).

An in-process cache answers repeats without a round trip; Redis
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

import time

import structlog
from redis.exceptions import RedisError

from ingest.redis_pipe import LuaScript, PipelinedRedis

log = structlog.get_logger(__name__)

KEY_PREFIX = "lms:dedup:"
CLAIMED = ord("1")  # an answer byte of the claim script

# One round trip for a whole batch. The event ids travel as one argument
# and the answer as one string ("1" = claimed now, "0" = seen before):
# packing and parsing a hundred separate arguments costs more than the
# round trip. KEYS[1] is the organization's prefix with a hash tag, so on
# a Redis Cluster all of an organization's keys share one slot.
_CLAIM_SCRIPT = LuaScript("""
local answers = {}
for id in string.gmatch(ARGV[2], '[^\\n]+') do
  if redis.call('SET', KEYS[1] .. id, '1', 'NX', 'EX', ARGV[1]) then
    answers[#answers + 1] = '1'
  else
    answers[#answers + 1] = '0'
  end
end
return table.concat(answers)
""")


def organization_prefix(organization_id: str) -> str:
    return f"{KEY_PREFIX}{{{organization_id}}}:"


def dedup_key(organization_id: str, event_id: str) -> str:
    return organization_prefix(organization_id) + event_id


class RecentClaims:
    """Event ids claimed recently, each with its organization; an entry lives between
    `ttl_s / 2` and `ttl_s`.

    Two generations of plain dicts: the older one is dropped when the newer
    one is half a TTL old or full. It forgets early, never late, which is
    all a cache in front of Redis needs. An id claimed by two organizations
    keeps the later one, so the other's repeats are asked of Redis: slower,
    never wrong. Keyed by the bare id, a lookup needs no string built per
    event, and a batch is added in one `dict.update`.
    """

    def __init__(self, *, ttl_s: float, max_entries: int) -> None:
        self._half_ttl = ttl_s / 2
        self._max_generation = max(1, max_entries // 2)
        self.current: dict[str, str] = {}
        self.previous: dict[str, str] = {}
        self._started = time.monotonic()

    def add_all(self, organization_id: str, event_ids: list[str]) -> None:
        if len(self.current) >= self._max_generation or time.monotonic() - self._started > self._half_ttl:
            self.previous, self.current = self.current, {}
            self._started = time.monotonic()
        self.current.update(dict.fromkeys(event_ids, organization_id))

    def discard(self, organization_id: str, event_id: str) -> None:
        for generation in (self.current, self.previous):
            if generation.get(event_id) == organization_id:
                del generation[event_id]


class Deduplicator:
    def __init__(self, redis: PipelinedRedis, *, window_s: int, local_entries: int) -> None:
        self._redis = redis
        self._window_s = window_s
        self._recent = RecentClaims(ttl_s=window_s, max_entries=local_entries)

    async def claim(self, organization_id: str, event_ids: list[str]) -> list[bool]:
        """For each id: True if first seen now (claimed), False if a duplicate (in the window or this batch)."""
        first = [False] * len(event_ids)
        current, previous = self._recent.current.get, self._recent.previous.get
        candidates: dict[str, int] = {}  # event_id -> index, first occurrence in the batch
        for index, event_id in enumerate(event_ids):
            if event_id in candidates or current(event_id) == organization_id or previous(event_id) == organization_id:
                continue
            candidates[event_id] = index
        if not candidates:
            return first
        try:
            answers = await self._redis.run(
                _CLAIM_SCRIPT, [organization_prefix(organization_id)], [self._window_s, "\n".join(candidates)]
            )
        except RedisError as exc:
            log.warning("dedup_redis_unavailable", error=str(exc), keys=len(candidates))
            answers = b"1" * len(candidates)
        claimed = []
        for (event_id, index), answer in zip(candidates.items(), answers, strict=True):
            if answer == CLAIMED:
                first[index] = True
                claimed.append(event_id)
        self._recent.add_all(organization_id, claimed)
        return first

    async def release(self, organization_id: str, event_ids: list[str]) -> None:
        """Forget claims of events that were not stored after all."""
        for event_id in event_ids:
            self._recent.discard(organization_id, event_id)
        keys = [dedup_key(organization_id, event_id) for event_id in event_ids]
        if not keys:
            return
        try:
            await self._redis.execute("DEL", *keys)
        except RedisError as exc:
            log.error("dedup_release_failed", error=str(exc), keys=len(keys))
