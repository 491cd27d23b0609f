"""The report queue on Redis Streams: one stream per priority, one consumer group.

    reports:queue:<priority>   XADD {job, org}; read by XREADGROUP, most urgent stream first
    reports:delayed            ZSET of jobs due later (scheduledFor, retry backoff), by due time

A message is delivered to one consumer of the group and stays in the
group's pending list until acknowledged, so a worker that dies with a
job leaves it there; another worker takes it over with XAUTOCLAIM once
it has been idle longer than the visibility timeout. A live worker keeps
its jobs' messages fresh (`renew`) so a long report is never taken from
it. Moving due jobs from the ZSET to their stream is one Lua script, so
with many workers each due job is queued once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from lms_events.metrics import REPORT_QUEUE
from reports import lookups

GROUP = "report-workers"
STREAM = "reports:queue:{priority}"
DELAYED = "reports:delayed"
PROMOTE_BATCH = 100

# KEYS[1] the delayed set; ARGV[1] now (ms), ARGV[2] the batch size, ARGV[3] the stream name pattern.
_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local entry = cjson.decode(member)
  local stream = string.gsub(ARGV[3], '{priority}', entry.priority)
  redis.call('XADD', stream, '*', 'job', entry.job, 'org', entry.org)
end
return #due
"""


@dataclass(frozen=True)
class Message:
    stream: str
    message_id: str
    job_id: str
    organization_id: str
    reclaimed: bool  # taken over from a consumer that stopped renewing it


def streams() -> list[str]:
    """Most urgent first (the lookup file lists priorities in that order)."""
    return [STREAM.format(priority=priority) for priority in lookups.values("report-priority")]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _messages(stream: str, entries: list[tuple[bytes, dict[bytes, bytes]]], reclaimed: bool) -> list[Message]:
    return [
        Message(stream, _text(mid), _text(body[b"job"]), _text(body[b"org"]), reclaimed)
        for mid, body in entries
        if body  # an entry deleted meanwhile comes back without fields
    ]


class ReportQueue:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._promote = redis.register_script(_PROMOTE)

    async def ensure_group(self) -> None:
        for stream in streams():
            try:
                await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def enqueue(self, job_id: str, organization_id: str, priority: str) -> None:
        await self.redis.xadd(STREAM.format(priority=priority), {"job": job_id, "org": organization_id})

    async def enqueue_at(self, job_id: str, organization_id: str, priority: str, due: float) -> None:
        member = orjson.dumps({"job": job_id, "org": organization_id, "priority": priority})
        await self.redis.zadd(DELAYED, {member: int(due * 1000)})

    async def promote_due(self) -> int:
        return int(await self._promote(keys=[DELAYED], args=[int(time.time() * 1000), PROMOTE_BATCH, STREAM]))

    async def claim(self, consumer: str, count: int, block_ms: int) -> list[Message]:
        """New messages, most urgent stream first; waits up to block_ms when there are none."""
        for stream in streams():
            answer = await self.redis.xreadgroup(GROUP, consumer, {stream: ">"}, count=count)
            if answer:
                return _messages(stream, answer[0][1], reclaimed=False)
        answer = await self.redis.xreadgroup(GROUP, consumer, {s: ">" for s in streams()}, count=1, block=block_ms)
        return [m for name, entries in answer or [] for m in _messages(_text(name), entries, reclaimed=False)]

    async def reclaim(self, consumer: str, count: int, idle_ms: int) -> list[Message]:
        """Messages of consumers that stopped renewing them for idle_ms (crashed workers)."""
        taken: list[Message] = []
        for stream in streams():
            if len(taken) >= count:
                break
            answer = await self.redis.xautoclaim(stream, GROUP, consumer, idle_ms, "0-0", count=count - len(taken))
            taken += _messages(stream, answer[1], reclaimed=True)
        return taken

    async def renew(self, consumer: str, message: Message) -> None:
        """Reset the message's idle time: this worker is alive and still on it."""
        await self.redis.xclaim(message.stream, GROUP, consumer, 0, [message.message_id], justid=True)

    async def depth(self) -> dict[str, int]:
        """Messages in each priority's stream (waiting or being worked on) and jobs delayed."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in streams():
                pipe.xlen(stream)
            pipe.zcard(DELAYED)
            counts = await pipe.execute()
        return dict(zip([*lookups.values("report-priority"), "delayed"], map(int, counts), strict=True))

    async def probe(self) -> None:
        """Scrape-time probe of /metrics (lms_events.metrics.add_probe)."""
        for queue, messages in (await self.depth()).items():
            REPORT_QUEUE.labels(queue).set(messages)

    async def ack(self, message: Message) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(message.stream, GROUP, message.message_id)
            pipe.xdel(message.stream, message.message_id)
            await pipe.execute()
