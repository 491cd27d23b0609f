"""The broker and Redis a gateway benchmark talks to, started and stopped around it.

A fresh Tansu broker; the machine's Redis with a database of the
benchmarks' own, emptied before and after (a run claims ~10^6 event ids
for 24 h, which must not pile up there), else an embedded valkey.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from redis import asyncio as aioredis

from lms_events import embedded
from lms_events.settings import DEFAULT_REDIS_URL

BENCH_REDIS_DB = 13


@dataclass(frozen=True)
class Services:
    bootstrap: str
    redis_url: str


async def empty_redis(url: str) -> None:
    client = aioredis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@asynccontextmanager
async def bench_services(work_dir: Path) -> AsyncIterator[Services]:
    broker = await embedded.start_tansu(embedded.free_port(), work_dir / "tansu.log")
    valkey = None
    redis_url = DEFAULT_REDIS_URL.rsplit("/", 1)[0] + f"/{BENCH_REDIS_DB}"
    try:
        if not await embedded.redis_reachable(redis_url):
            valkey = await embedded.start_valkey(embedded.free_port(), work_dir / "valkey")
            redis_url = f"redis://127.0.0.1:{valkey.port}/0"
        await empty_redis(redis_url)
        try:
            yield Services(f"127.0.0.1:{broker.port}", redis_url)
        finally:
            await empty_redis(redis_url)
    finally:
        broker.stop()
        if valkey:
            valkey.stop()
