"""`GET /api/v1/audit`: the audit trail of the caller's organization, newest
first, keyset-paginated by (at, requestId). Administrators only: the
trail says who looked at whom."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from analytics.params import encode_cursor, iso_z, narrowing, sql_time
from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import Forbidden

# query parameter -> column
FILTER_PARAMETERS = {"action": "action", "userId": "subject_user_id", "actor": "actor"}


@dataclass(frozen=True)
class AuditQuery:
    scope: Scope
    limit: int
    filters: dict[str, str]  # column -> value
    start: datetime | None = None
    end: datetime | None = None
    after: list[Any] | None = None


def require_administrator(scope: Scope) -> None:
    if not scope.organization_wide:
        raise Forbidden("the audit trail is for subscriber-admins and system-admins")


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": iso_z(row["at"]),
        "organizationId": row["organization_id"],
        "actor": row["actor"],
        "actorRole": row["actor_role"],
        "action": row["action"],
        "subjectUserId": row["subject_user_id"] or None,
        "target": row["target"],
        "detail": orjson.loads(row["detail"] or "{}"),
        "clientIp": row["client_ip"],
        "requestId": row["request_id"],
    }


async def audit_entries(store: ClickHouseStore, query: AuditQuery) -> dict[str, Any]:
    params: dict[str, Any] = {**query.scope.params, "page": query.limit + 1}
    conditions, bound = narrowing(query.filters, "at", query.start, query.end)
    params.update(bound)
    if query.after is not None:
        conditions += " AND (at, request_id) < (toDateTime64({after_at:String}, 3, 'UTC'), {after_id:String})"
        params["after_at"], params["after_id"] = query.after
    rows = await store.query(
        f"""SELECT at, organization_id, actor, actor_role, action, subject_user_id, target, detail, client_ip, request_id
            FROM audit_log WHERE {query.scope.organizations()}{conditions}
            ORDER BY at DESC, request_id DESC LIMIT {{page:UInt32}}""",
        params,
    )
    page, more = rows[: query.limit], len(rows) > query.limit
    next_cursor = None
    if more:
        last = _item(page[-1])
        next_cursor = encode_cursor([sql_time(datetime.fromisoformat(last["at"].replace("Z", "+00:00"))), last["requestId"]])
    return {"items": [_item(row) for row in page], "nextCursor": next_cursor}
