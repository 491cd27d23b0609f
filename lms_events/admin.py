"""The admin API of a running instance, mounted at /admin on the gateway.

Only for the `lms-events` commands on the same machine: it answers on
loopback only, and only with the per-start token from `instance.json`.
Handlers reach the resources of the main app through `request.config_dict`.
"""

from __future__ import annotations

import hmac
import ipaddress

import orjson
from aiohttp import web

from ingest.keys import STORE
from lms_events.errors import StorageError
from lms_events.instance import ADMIN_TOKEN_HEADER
from streams.backfill import BackfillScope, run_backfill

ADMIN_TOKEN = web.AppKey("admin_token", str)


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


@web.middleware
async def admin_guard(request: web.Request, handler):  # type: ignore[no-untyped-def]
    token = request.headers.get(ADMIN_TOKEN_HEADER, "")
    if not _loopback(request.remote) or not hmac.compare_digest(token, request.app[ADMIN_TOKEN]):
        raise web.HTTPForbidden(text='{"error": "admin API: loopback and admin token only"}', content_type="application/json")
    return await handler(request)


async def get_status(request: web.Request) -> web.Response:
    return web.json_response({"status": "running"})


async def post_backfill(request: web.Request) -> web.StreamResponse:
    """Run a backfill in this process (it owns chDB); one NDJSON progress line per batch."""
    try:
        scope = BackfillScope.from_json(await request.json())
    except (ValueError, TypeError, AttributeError) as exc:
        raise web.HTTPBadRequest(text=orjson.dumps({"error": f"bad backfill scope: {exc}"}).decode(), content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    try:
        async for progress in run_backfill(request.config_dict[STORE], scope):
            await response.write(orjson.dumps(progress.as_json()) + b"\n")
    except StorageError as exc:
        await response.write(orjson.dumps({"error": str(exc)}) + b"\n")
    await response.write_eof()
    return response


def create_admin_app(token: str) -> web.Application:
    admin = web.Application(middlewares=[admin_guard])
    admin[ADMIN_TOKEN] = token
    admin.router.add_get("/status", get_status)
    admin.router.add_post("/backfill", post_backfill)
    return admin
