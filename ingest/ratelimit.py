"""Per-write-key token bucket in Redis, counted in events.

One script call per request refills the bucket by elapsed time (Redis
server clock, so every gateway process agrees) and takes the batch's
events from it, or answers how long to wait. If Redis is down the
gateway fails open: losing rate limiting briefly is better than refusing
a school's telemetry.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

KEY_PREFIX = "lms:ratelimit:"

_TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local wait_ms = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait_ms = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait_ms
"""


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after_s: int


class RateLimiter:
    def __init__(self, redis: Redis, *, events_per_s: float, burst: int) -> None:
        self._events_per_s = events_per_s
        self._burst = burst
        self._take = redis.register_script(_TAKE_SCRIPT)

    async def take(self, key_id: str, events: int) -> RateDecision:
        try:
            wait_ms = int(await self._take(keys=[KEY_PREFIX + key_id], args=[self._events_per_s, self._burst, events]))
        except RedisError as exc:
            log.warning("ratelimit_redis_unavailable", error=str(exc))
            return RateDecision(True, 0)
        if wait_ms <= 0:
            return RateDecision(True, 0)
        return RateDecision(False, max(1, -(-wait_ms // 1000)))
