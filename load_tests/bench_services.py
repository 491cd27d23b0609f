"""The broker and Redis a gateway benchmark talks to, started and stopped around it.

A fresh Tansu broker and a fresh valkey-server in the work dir (a run
claims ~10^6 event ids for 24 h: they go away with the work dir). With
`REDIS_URL` set, that Redis is used as given and left as it is: give the
benchmark a database of its own there.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from lms_events import embedded


@dataclass(frozen=True)
class Services:
    bootstrap: str
    redis_url: str


@asynccontextmanager
async def bench_services(work_dir: Path) -> AsyncIterator[Services]:
    broker = await embedded.start_tansu(embedded.free_port(), work_dir / "tansu.log")
    valkey = None
    try:
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            valkey = await embedded.start_valkey(embedded.free_port(), work_dir / "valkey")
            redis_url = f"redis://127.0.0.1:{valkey.port}/0"
        yield Services(f"127.0.0.1:{broker.port}", redis_url)
    finally:
        broker.stop()
        if valkey:
            valkey.stop()
