"""GET /health: is each component this process depends on answering?"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ingest.handlers import json_response
from ingest.keys import PUBLISHER, REDIS, STORE

CHECK_TIMEOUT_S = 2.0


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


async def get_health(request: web.Request) -> web.Response:
    checks = {"broker": request.app[PUBLISHER].healthy(), "redis": _redis_ok(request)}
    if STORE in request.app:
        checks["clickhouse"] = _clickhouse_ok(request)
    results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    components = {name: "ok" if ok else "unavailable" for name, ok in results.items()}
    healthy = all(results.values())
    return json_response({"status": "ok" if healthy else "degraded", "components": components}, 200 if healthy else 503)
