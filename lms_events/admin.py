"""The admin API of a running instance, mounted at /admin on the gateway.

Only for the `lms-events` commands on the same machine: it answers on
loopback only, and only with the per-start token from `instance.json`.
Handlers reach the resources of the main app through `request.config_dict`.
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

from lms_events.instance import ADMIN_TOKEN_HEADER

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


def create_admin_app(token: str) -> web.Application:
    admin = web.Application(middlewares=[admin_guard])
    admin[ADMIN_TOKEN] = token
    admin.router.add_get("/status", get_status)
    return admin
