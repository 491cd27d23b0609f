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

from ingest.keys import KEYRING, STORE
from lms_events import retention, write_keys
from lms_events.retention import RetentionPolicy
from lms_events.errors import LmsEventsError, StorageError
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
        return web.json_response({"error": "admin API: loopback and admin token only"}, status=403)
    try:
        return await handler(request)
    except LmsEventsError as exc:
        return web.json_response({"error": str(exc)}, status=400)


async def get_status(request: web.Request) -> web.Response:
    return web.json_response({"status": "running"})


async def create_key(request: web.Request) -> web.Response:
    body = await request.json()
    key, plaintext = await write_keys.create_key(
        request.config_dict[STORE],
        organization_id=str(body.get("organization_id", "")),
        environment=str(body.get("environment", "")),
        name=str(body.get("name", "")),
    )
    await request.config_dict[KEYRING].refresh()
    return web.json_response({**key.public(), "key": plaintext})


async def list_keys(request: web.Request) -> web.Response:
    keys = await write_keys.list_keys(request.config_dict[STORE], organization_id=request.query.get("organization_id"))
    return web.json_response([k.public() for k in keys])


async def revoke_key(request: web.Request) -> web.Response:
    key = await write_keys.revoke_key(request.config_dict[STORE], request.match_info["key_id"])
    await request.config_dict[KEYRING].refresh()
    return web.json_response(key.public())


async def put_retention(request: web.Request) -> web.Response:
    body = await request.json()
    policy = RetentionPolicy(
        request.match_info["organization_id"], dict(body.get("by_privacy_level") or {}), dict(body.get("by_category") or {})
    )
    return web.json_response((await retention.set_policy(request.config_dict[STORE], policy)).public())


async def get_retention(request: web.Request) -> web.Response:
    return web.json_response((await retention.policy_of(request.config_dict[STORE], request.match_info["organization_id"])).public())


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
    admin.router.add_post("/keys", create_key)
    admin.router.add_get("/keys", list_keys)
    admin.router.add_delete("/keys/{key_id}", revoke_key)
    admin.router.add_put("/retention/{organization_id}", put_retention)
    admin.router.add_get("/retention/{organization_id}", get_retention)
    admin.router.add_post("/backfill", post_backfill)
    return admin
