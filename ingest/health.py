"""GET /health: is each component this process depends on answering?

Under `up`, which runs the stream worker too, it also says whether the
worker is ready (joined its group, reference tables loaded): until then
the answer is 503 `starting`, so a probe never sees `ok` before events
can be loaded; and when a sink last stored a batch. Every gateway also
says how many messages the stream app has yet to commit (`consumer_lag`,
null when it cannot be read): informative, it never makes the answer 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from ingest.handlers import json_response
from ingest.keys import PUBLISHER, REDIS, STORE, STREAM_WORKER
from lms_events.lag import LagReader

CHECK_TIMEOUT_S = 2.0
LAG = web.AppKey("consumer_lag", LagReader)


@dataclass
class StreamWorkerState:
    """What `up` tells /health about the stream worker it runs."""

    last_stored_at: Callable[[], float | None]
    ready: bool = False


async def _redis_ok(request: web.Request) -> bool:
    try:
        return await asyncio.wait_for(request.app[REDIS].execute("PING"), CHECK_TIMEOUT_S) == b"PONG"
    except Exception:  # any failure is "down" for a health probe
        return False


async def _clickhouse_ok(request: web.Request) -> bool:
    try:
        await asyncio.wait_for(request.app[STORE].query("SELECT 1 AS ok"), CHECK_TIMEOUT_S)
        return True
    except Exception:  # any failure is "down" for a health probe
        return False


async def _consumer_lag(request: web.Request) -> int | None:
    try:
        return sum((await request.app[LAG].by_topic()).values())
    except Exception:  # any failure is "unknown" for a health probe
        return None


async def get_health(request: web.Request) -> web.Response:
    checks = {"broker": request.app[PUBLISHER].healthy(), "redis": _redis_ok(request)}
    if STORE in request.app:
        checks["clickhouse"] = _clickhouse_ok(request)
    lag, *outcomes = await asyncio.gather(_consumer_lag(request), *checks.values())
    results = dict(zip(checks, outcomes, strict=True))
    components = {name: "ok" if ok else "unavailable" for name, ok in results.items()}
    healthy = all(results.values())
    answer: dict[str, object] = {"status": "ok" if healthy else "degraded", "components": components, "consumer_lag": lag}
    worker = request.app.get(STREAM_WORKER)
    if worker is not None:
        components["stream_worker"] = "ok" if worker.ready else "starting"
        stored_at = worker.last_stored_at()
        answer["sink_last_success"] = (
            datetime.fromtimestamp(stored_at, UTC).isoformat(timespec="milliseconds") if stored_at else None
        )
        if not worker.ready:
            answer["status"], healthy = "starting", False
    return json_response(answer, 200 if healthy else 503)
