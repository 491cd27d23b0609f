"""`lms-events sql "SELECT ..."`: look at stored data while `lms-events up` runs.

chDB is in-process and the running `up` owns its data dir, so no other
process may open it. The query goes to the running instance's analyst
SQL endpoint (POST /api/v1/query) instead: one read-only SELECT over the
analyst tables (`GET /api/v1/query/schema`), checked by the guard, bounded
by the query limits and audited, like any analyst's. The command signs a
one-minute system-admin token with the secret the instance checks tokens
with (the data dir's `jwt_secret`, or LMS_EVENTS_JWT_SECRET): whoever can
read that secret can mint any token with `lms-events token` already, so
this opens nothing new.

`--url` sends it to another gateway or `lms-events api` that shares
LMS_EVENTS_JWT_SECRET.
"""

from __future__ import annotations

import aiohttp
import orjson

from lms_events import tokens
from lms_events.errors import ConfigError, LmsEventsError
from lms_events.instance import running_instance
from lms_events.settings import Settings

QUERY_PATH = "/api/v1/query"
TOKEN_LIFETIME_S = 60
CLI_SUBJECT = "lms-events-cli"
FORMATS = ("csv", "json")
TIMEOUT_S = 120.0


def _target(settings: Settings, url: str | None) -> str:
    if url:
        return url.rstrip("/")
    instance = running_instance(settings.data_dir)
    if instance is None:
        raise ConfigError(
            "LMS_EVENTS_DATA_DIR",
            f"no `lms-events up` runs with the data dir {settings.data_dir.resolve()}: start it (or run this "
            "where it runs, or set LMS_EVENTS_DATA_DIR to its data dir), or pass --url of a running gateway or api",
        )
    return instance.gateway_url


def _secret(settings: Settings) -> bytes:
    if not settings.jwt_secret and not (settings.data_dir / tokens.SECRET_FILE).exists():
        raise ConfigError(
            "LMS_EVENTS_JWT_SECRET", f"not set, and {settings.data_dir.resolve()} holds no {tokens.SECRET_FILE} to sign with"
        )
    return tokens.signing_secret(settings)


async def run_sql(settings: Settings, sql: str, *, organization_id: str | None, fmt: str, url: str | None) -> bytes:
    """The answer's body (CSV with a header, or ClickHouse JSON), or LmsEventsError with the server's reason."""
    target = _target(settings, url)
    token = tokens.mint(
        _secret(settings), sub=CLI_SUBJECT, role=tokens.Role.SYSTEM_ADMIN, organization_id=None, lifetime_s=TOKEN_LIFETIME_S
    )
    params = {"organizationId": organization_id} if organization_id else {}
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(
                f"{target}{QUERY_PATH}",
                params=params,
                json={"sql": sql, "format": fmt},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                body = await response.read()
                if response.status >= 400:
                    raise LmsEventsError(_reason(response.status, body))
                return body
    except aiohttp.ClientError as exc:
        raise LmsEventsError(f"cannot reach {target}: {exc}") from None


def _reason(status: int, body: bytes) -> str:
    try:
        answer = orjson.loads(body)
        field = f" ({answer['field']})" if answer.get("field") else ""
        return f"HTTP {status}: {answer['error']}{field}"
    except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
        return f"HTTP {status}: {body.decode(errors='replace')[:500]}"
