"""`lms-events analysts create|list|revoke`: ClickHouse users for direct connections to a server.

Each analyst is a ClickHouse user confined by the server itself, as the
guard confines /api/v1/query:

    grants        SELECT on the analyst tables (catalog.ANALYST_TABLES) of the database, nothing else:
                  no table functions (they need CREATE TEMPORARY TABLE and source grants), no dictionaries
    row policies  one per analyst table: organization_id = the analyst's organization
    profile       readonly = 1 and the limits, every one CONST (the user cannot change them)
    quota         queries and execution time per hour

The statements are built here and run by the product's own user. Row
policies assume `users_without_row_policies_can_read_rows = true` (the
server's default since 23.x): the product's user has no policy and must
keep reading every row. chDB has no users; there, analysts connect to
/clickhouse with a read token.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from analytics.analyst.catalog import ANALYST_TABLES, ORGANIZATION_COLUMN
from analytics.analyst.guard import Limits
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import ConfigError, NotFound

USER_PREFIX = "lms_analyst_"
QUERIES_PER_HOUR = 1000


@dataclass(frozen=True)
class Created:
    user_name: str
    password: str
    organization_id: str


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_statements(
    database: str, user_name: str, password: str, organization_id: str, limits: Limits, concurrency: int
) -> list[str]:
    user = _identifier(user_name)
    settings = ", ".join(
        f"{name} = {value} CONST"
        for name, value in (
            ("max_execution_time", f"{limits.max_execution_s:g}"),
            ("max_result_rows", str(limits.max_result_rows)),
            ("result_overflow_mode", "'throw'"),
            ("max_memory_usage", str(limits.max_memory_bytes)),
            ("max_concurrent_queries_for_user", str(concurrency)),
            ("readonly", "1"),
        )
    )
    statements = [
        f"CREATE SETTINGS PROFILE IF NOT EXISTS {user} SETTINGS {settings}",
        (
            f"CREATE USER IF NOT EXISTS {user} IDENTIFIED WITH sha256_password BY {_string(password)} "
            f"DEFAULT DATABASE {_identifier(database)} SETTINGS PROFILE {_string(user_name)}"
        ),
        (
            f"CREATE QUOTA IF NOT EXISTS {user} FOR INTERVAL 1 hour "
            f"MAX queries = {QUERIES_PER_HOUR}, execution_time = {int(QUERIES_PER_HOUR * limits.max_execution_s)} TO {user}"
        ),
    ]
    for table in ANALYST_TABLES:
        qualified = f"{_identifier(database)}.{_identifier(table)}"
        statements.append(
            f"CREATE ROW POLICY IF NOT EXISTS {_identifier(f'{user_name}_{table}')} ON {qualified} "
            f"FOR SELECT USING {ORGANIZATION_COLUMN} = {_string(organization_id)} TO {user}"
        )
        statements.append(f"GRANT SELECT ON {qualified} TO {user}")
    return statements


def revoke_statements(database: str, user_name: str) -> list[str]:
    user = _identifier(user_name)
    policies = [
        f"DROP ROW POLICY IF EXISTS {_identifier(f'{user_name}_{table}')} ON {_identifier(database)}.{_identifier(table)}"
        for table in ANALYST_TABLES
    ]
    return [
        f"DROP USER IF EXISTS {user}",
        *policies,
        f"DROP QUOTA IF EXISTS {user}",
        f"DROP SETTINGS PROFILE IF EXISTS {user}",
    ]


NEEDS_SERVER = "analyst users live on a ClickHouse server; with chDB, analysts use /clickhouse with a read token (`lms-events token`)"


def _require_server(store: ClickHouseStore) -> None:
    if store.driver == "chdb":
        raise ConfigError("CLICKHOUSE_URL", NEEDS_SERVER)


async def create(store: ClickHouseStore, organization_id: str, name: str, limits: Limits, concurrency: int) -> Created:
    _require_server(store)
    user_name = USER_PREFIX + secrets.token_hex(6)
    password = secrets.token_urlsafe(24)
    for statement in create_statements(store.database, user_name, password, organization_id, limits, concurrency):
        await store.execute(statement)
    await _record(store, user_name, organization_id, name)
    return Created(user_name, password, organization_id)


async def listed(store: ClickHouseStore, organization_id: str | None) -> list[dict[str, Any]]:
    _require_server(store)
    return await store.query(
        "SELECT user_name, organization_id, name, created_at, revoked_at FROM analyst_users FINAL "
        "WHERE {org:String} = '' OR organization_id = {org:String} ORDER BY created_at",
        {"org": organization_id or ""},
    )


async def revoke(store: ClickHouseStore, user_name: str) -> dict[str, Any]:
    _require_server(store)
    rows = await store.query(
        "SELECT user_name, organization_id, name, toString(created_at) AS created_at FROM analyst_users FINAL "
        "WHERE user_name = {user:String}",
        {"user": user_name},
    )
    if not rows:
        raise NotFound(f"no analyst user {user_name}", field="user")
    for statement in revoke_statements(store.database, user_name):
        await store.execute(statement)
    await _record(store, user_name, rows[0]["organization_id"], rows[0]["name"], created_at=rows[0]["created_at"])
    return rows[0]


async def _record(
    store: ClickHouseStore, user_name: str, organization_id: str, name: str, *, created_at: str | None = None
) -> None:
    """The user's state: created now, or (given when it was created) revoked now."""
    await store.execute(
        "INSERT INTO analyst_users SELECT {user:String}, {org:String}, {name:String}, "
        "if({created:String} = '', now64(3), parseDateTime64BestEffort({created:String}, 3, 'UTC')), "
        "if({created:String} = '', NULL, now64(3)), {version:UInt64}",
        {"user": user_name, "org": organization_id, "name": name, "created": created_at or "", "version": time.time_ns()},
    )
