"""Per-write-key token bucket in Redis, counted in events.

A script call refills the bucket by elapsed time (Redis server clock, so
every gateway process agrees) and takes the batch's events from it, or
answers how long to wait. With the events it also takes a lease: up to
LEASE_S worth of the key's rate, which this process then spends without
asking Redis (a busy key costs a round trip every few requests instead of
every one: ~4,000 instructions an event). Leased tokens unused after
LEASE_S are dropped, so a key is never admitted more than its rate; with
several gateway processes, a lease held by one can make another answer
429 up to LEASE_S early. If Redis is down the gateway fails open: losing
rate limiting briefly is better than refusing a school's telemetry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError

from ingest.redis_pipe import LuaScript, PipelinedRedis

log = structlog.get_logger(__name__)

KEY_PREFIX = "lms:ratelimit:"

_TAKE_SCRIPT = LuaScript("""
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local wait_ms = 0
local leased = 0
if tokens >= cost then
  tokens = tokens - cost
  leased = math.min(lease, math.floor(tokens))
  tokens = tokens - leased
else
  wait_ms = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {wait_ms, leased}
""")

# Seconds of a key's rate one process may take ahead of its requests.
LEASE_S = 0.25


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after_s: int


@dataclass(slots=True)
class _Lease:
    tokens: int
    until: float  # time.monotonic()


ALLOWED = RateDecision(True, 0)


class RateLimiter:
    def __init__(self, redis: PipelinedRedis, *, events_per_s: float, burst: int) -> None:
        self._redis = redis
        self._events_per_s = events_per_s
        self._burst = burst
        # At most a quarter of the burst, so a small bucket is not held by one process.
        self._lease_size = min(int(events_per_s * LEASE_S), burst // 4)
        self._leases: dict[str, _Lease] = {}
        self._leasing: set[str] = set()

    def _lease_of(self, key_id: str) -> _Lease:
        lease = self._leases.get(key_id)
        if lease is None or time.monotonic() >= lease.until:
            lease = self._leases[key_id] = _Lease(0, 0.0)
        return lease

    async def take(self, key_id: str, events: int) -> RateDecision:
        lease = self._lease_of(key_id)
        if lease.tokens >= events:
            lease.tokens -= events
            return ALLOWED
        # What the lease still holds goes to this batch now, before the await,
        # so a concurrent request cannot spend it too.
        in_hand, lease.tokens = lease.tokens, 0
        # One lease request in flight per key: concurrent requests that each took
        # one would drain the shared bucket for tokens this process cannot spend.
        leasing = key_id not in self._leasing
        if leasing:
            self._leasing.add(key_id)
        try:
            wait_ms, leased = await self._redis.run(
                _TAKE_SCRIPT,
                [KEY_PREFIX + key_id],
                [self._events_per_s, self._burst, events - in_hand, self._lease_size if leasing else 0],
            )
        except RedisError as exc:
            log.warning("ratelimit_redis_unavailable", error=str(exc))
            return ALLOWED
        finally:
            if leasing:
                self._leasing.discard(key_id)
        lease = self._lease_of(key_id)
        if int(wait_ms) > 0:
            lease.tokens += in_hand
            return RateDecision(False, max(1, -(-int(wait_ms) // 1000)))
        if int(leased) > 0:
            lease.tokens += int(leased)
            lease.until = time.monotonic() + LEASE_S
        return ALLOWED
