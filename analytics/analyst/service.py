"""One analyst query, whichever door it came through (POST /api/v1/query, /clickhouse/):
role -> slot -> guard -> run -> audit row, then the answer streamed in chunks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from analytics.analyst import audit
from analytics.analyst.guard import guard
from analytics.analyst.keys import CATALOG, LIMITS, SLOTS
from analytics.analyst.run import Answer, Format, run
from analytics.keys import AUDIT, STORE
from lms_events.request_context import current_request_id
from analytics.scope import Scope
from lms_events.audit import AuditEntry
from lms_events.errors import ClientError, Forbidden, LimitExceeded
from lms_events.tokens import ORGANIZATION_WIDE

CHUNK_BYTES = 256 * 1024


def require_analyst(scope: Scope) -> None:
    """Whole organizations only: narrower roles' scopes are populations of users, which a
    per-table filter of the engine does not express."""
    if scope.role not in ORGANIZATION_WIDE:
        raise Forbidden(f"analyst SQL is for system-admin and subscriber-admin, not {scope.role}", field="role")


@dataclass(frozen=True)
class Answered:
    query_id: str
    format: Format
    answer: Answer


async def answered(
    app: web.Application,
    scope: Scope,
    sql: str,
    params: Mapping[str, Any],
    fmt: Format,
    *,
    text_formats: Mapping[str, Format] | None = None,
) -> Answered:
    """Run `sql` for `scope` in `fmt` (or the `FORMAT` its text names, one of `text_formats`), audited."""
    require_analyst(scope)
    started, clock = datetime.now(UTC), time.perf_counter()
    store, limits, query_id = app[STORE], app[LIMITS], str(uuid.uuid4())

    async def audited(status: str, used: Format, error: str = "", rows: int = 0) -> None:
        entry = audit.Entry(
            scope.organization_id, query_id, started, scope.sub, str(scope.role), sql, dict(params),
            used.clickhouse, status, error, rows, (time.perf_counter() - clock) * 1000,
        )  # fmt: skip
        await audit.record(store, entry)
        # the organization's audit trail too: who queried, when, how it ended (the SQL stays in analyst_queries)
        app[AUDIT].record(
            AuditEntry(
                organization_id=scope.organization_id or "", actor=scope.sub, actor_role=str(scope.role),
                action=f"query.{status}", target=f"analyst-query:{query_id}", detail={"rows": rows},
                request_id=current_request_id(),
            )
        )  # fmt: skip

    status = "refused"  # until the guard accepted it
    try:
        async with app[SLOTS].taken(scope.organization_id):
            checked = await guard(
                store, app[CATALOG], sql, dict(params), scope.organization_id, limits, formats=text_formats or {}
            )
            if checked.text_format is not None and text_formats:
                fmt = text_formats[checked.text_format]
            status = "failed"
            answer = await run(store, checked, fmt, limits)
    except ClientError as exc:
        await audited("limit" if isinstance(exc, LimitExceeded) else status, fmt, exc.reason)
        raise
    await audited("ok", fmt, rows=answer.rows or 0)
    return Answered(query_id, fmt, answer)


async def streamed(request: web.Request, body: bytes, headers: Mapping[str, str]) -> web.StreamResponse:
    response = web.StreamResponse(headers=dict(headers))
    response.enable_chunked_encoding()
    await response.prepare(request)
    view = memoryview(body)
    for offset in range(0, len(view), CHUNK_BYTES):
        await response.write(view[offset : offset + CHUNK_BYTES])
    await response.write_eof()
    return response
