"""Erasure of one person of one organization (GDPR art. 17), as a job.

Steps, each a row of the job (its progress):

    tombstone  the person's digests (id and `pii` pseudonym) to ClickHouse
               `erasure_tombstones` and Redis: from here the gateway
               answers `erased` and the stream drops their events
    settle     wait for the stream batches of this process begun before
               the tombstone (lms_events/tombstones.py): after them, no
               insert can bring the person back
    reports    report files made before the erasure that may hold the
               person expire at once (the rule below); the person's own
               report jobs go with their files
    rows       every table naming the person (lms_events/personal_data.py:
               user columns from system.columns, and NAMED_ELSEWHERE):
               rows deleted (lightweight DELETE: gone for every query at
               once, purged from disk at the parts' next merge); in the
               audit trail the person's id is replaced by `erased:<job>`
               (who looked at whose data stays on record, not who they were)
    rollups    activity_daily of the days they had events on, recomputed
               (privacy/rollups.py)
    redis      their consent record; the organization's cached answers
    sweep      count again (against a ClickHouse server, after SWEEP_GRACE_S);
               anything a stream worker of another process stored meanwhile
               is deleted (and its days recomputed)
    forget     their export archives, then the job's own rows naming them:
               the completed job names nobody; an audit row with the counts

Report rule: every report of the organization completed before the
erasure, whose scope could include the person, expires: all of them but
those a student requested (a student's reports are about themselves).
A report still running while the erasure runs is not covered.
Not covered either: the person as a class's teacher (`teacherIds` of
ClassCreated / ClassUpdated facts and the `classes` read model), and the
stream worker's in-memory reference tables, which keep their user entity
until the worker restarts (they are reloaded from ClickHouse, without it).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from analytics.cache import bump
from ingest.consent import consent_key
from lms_events.audit import AuditEntry, write_now
from lms_events.personal_data import Source, sources
from lms_events.tombstones import TABLE as TOMBSTONES, redis_key
from privacy import rollups
from privacy.context import PrivacyContext
from privacy.jobs import COMPLETED, TABLE as JOBS_TABLE, JobStore, PrivacyJob, Progress, now
from reports.ledger import Ledger
from reports.storage import ReportFiles

STEPS = ("tombstone", "settle", "reports", "rows", "rollups", "redis", "sweep", "forget")
# How long an erasure waits for this process's stream batches begun before its tombstone.
SETTLE_TIMEOUT_S = 60.0
# Against a ClickHouse server the stream workers are other processes, which no barrier
# reaches: the sweep waits this long first, for their batches begun before the tombstone.
SWEEP_GRACE_S = 10.0
AUDIT_TABLE = "audit_log"
# Rows of these are not deleted by the rows step: the job's own rows go last (forget).
LAST = (JOBS_TABLE,)

_TOMBSTONE_SCHEMA = pa.schema(
    [("organization_id", pa.string()), ("digest", pa.string()), ("erasure_id", pa.string()),
     ("written_at", pa.timestamp("ms", tz="UTC")), ("_version", pa.uint64())]
)  # fmt: skip


async def _tombstone(ctx: PrivacyContext, job: PrivacyJob, identities: dict[str, str]) -> int:
    organization_id = job.organization_id
    digests = sorted({ctx.tombstones.digester.digest(organization_id, identities[name]) for name in ("id", "alias")})
    rows = [
        {"organization_id": organization_id, "digest": digest, "erasure_id": job.job_id, "written_at": datetime.now(UTC), "_version": time.time_ns() // 1000}
        for digest in digests
    ]
    await ctx.store.insert_arrow(TOMBSTONES, pa.Table.from_pylist(rows, schema=_TOMBSTONE_SCHEMA), dedup_token=f"tombstone:{job.job_id}")
    await ctx.redis.mset({redis_key(organization_id, digest): job.job_id for digest in digests})
    ctx.tombstones.add(organization_id, digests)
    return ctx.tombstones.generation


async def _expire_reports(ctx: PrivacyContext, job: PrivacyJob, identities: dict[str, str]) -> dict[str, int]:
    rows = await ctx.store.query(
        """SELECT job_id, requested_by, requester_role FROM (
               SELECT job_id, requested_by, requester_role, status, deleted, created_at FROM report_jobs
               WHERE organization_id = {org:String} ORDER BY version DESC LIMIT 1 BY job_id)
           WHERE deleted = 0 AND status = 'completed' AND created_at <= {at:DateTime64(3, 'UTC')}""",
        {"org": job.organization_id, "at": job.created_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]},
    )
    ledger, files = Ledger(ctx.store, ctx.redis), ReportFiles(ctx.settings)
    own_ids = {identities["id"], identities["alias"]}
    expired = removed = 0
    for row in rows:
        own = row["requested_by"] in own_ids
        if row["requester_role"] == "student" and not own:
            continue  # about another student only
        stored = await ledger.find(job.organization_id, row["job_id"])
        if stored is None:
            continue
        if stored.job.output.storage is not None:
            await asyncio.to_thread(files.delete, stored.job.output.storage)
        if own:  # the job's rows, which name the person, go in the rows step
            await ledger.delete(stored)
            await ctx.redis.hdel(stored.key, "row")
            removed += 1
        else:
            await ledger.expire_now(stored, "expired-by-erasure")
            expired += 1
    return {"reports_expired": expired, "own_reports_removed": removed}


async def _count(ctx: PrivacyContext, source: Source, identities: dict[str, str]) -> int:
    rows = await ctx.store.query(f"SELECT count() AS n FROM {source.table} WHERE {source.condition}", identities)
    return int(rows[0]["n"])


async def _rewrite_audit(ctx: PrivacyContext, source: Source, identities: dict[str, str], marker: str) -> None:
    """The person's id replaced by `marker` in the trail: copies first, then the originals go."""
    params = {**identities, "marker": marker}
    replaced = "if({column} IN ({{id:String}}, {{alias:String}}), {{marker:String}}, {column})"
    target, detail = "target", "detail"
    for name in ("id", "alias"):
        value = f"{{{name}:String}}"
        # a path segment (`/users/<id>/...`, `/v1/consent/<id>`) and a JSON string value
        target = f"replaceAll({target}, concat('/', {value}, '/'), concat('/', {{marker:String}}, '/'))"
        target = f"if(endsWith({target}, concat('/', {value})), concat(substring({target}, 1, length({target}) - length({value})), {{marker:String}}), {target})"
        detail = f"replaceAll({detail}, concat('\"', {value}, '\"'), concat('\"', {{marker:String}}, '\"'))"
    await ctx.store.execute(
        f"""INSERT INTO {AUDIT_TABLE}
            SELECT at, organization_id, {replaced.format(column='actor')}, actor_role, action,
                   {replaced.format(column='subject_user_id')}, {target}, {detail}, client_ip, request_id
            FROM {AUDIT_TABLE} WHERE {source.condition} SETTINGS insert_deduplicate = 0""",
        params,
    )
    await ctx.store.execute(f"DELETE FROM {AUDIT_TABLE} WHERE {source.condition}", identities)


async def _remove_rows(ctx: PrivacyContext, job: PrivacyJob, identities: dict[str, str]) -> dict[str, int]:
    removed: dict[str, int] = {}
    for source in await sources(ctx.store):
        if source.table in LAST:
            continue
        found = await _count(ctx, source, identities)
        if not found:
            continue
        if source.table == AUDIT_TABLE:
            await _rewrite_audit(ctx, source, identities, f"erased:{job.job_id}")
        else:
            await ctx.store.execute(f"DELETE FROM {source.table} WHERE {source.condition}", identities)
        removed[source.table] = found
    return removed


async def _clear_redis(ctx: PrivacyContext, job: PrivacyJob, identities: dict[str, str]) -> int:
    keys = [consent_key(job.organization_id, identities[name]) for name in ("id", "alias")]
    cleared = int(await ctx.redis.delete(*keys))
    await bump(ctx.redis, [job.organization_id])
    return cleared


async def _forget(ctx: PrivacyContext, job: PrivacyJob, identities: dict[str, str]) -> int:
    """The person's export archives and the job rows naming them; returns the archives removed."""
    rows = await ctx.store.query(
        f"SELECT file_path FROM {JOBS_TABLE} FINAL WHERE organization_id = {{org:String}} AND kind = 'export' "
        "AND user_id IN ({id:String}, {alias:String}) AND file_path != ''",
        identities,
    )
    for row in rows:
        await asyncio.to_thread((ctx.settings.data_dir / row["file_path"]).unlink, missing_ok=True)
    return len(rows)


async def erase(ctx: PrivacyContext, job: PrivacyJob, progress: Progress) -> PrivacyJob:
    identities = ctx.identities(job.organization_id, job.user_id)
    counts: dict[str, Any] = job.counts  # filled step by step: each progress row shows them so far
    counts.clear()  # a resumed job starts over
    generation = await _tombstone(ctx, job, identities)
    await progress("tombstone")
    counts["settled"] = await ctx.tombstones.settled(generation, SETTLE_TIMEOUT_S)
    await progress("settle")
    counts.update(await _expire_reports(ctx, job, identities))
    await progress("reports")
    days = await rollups.days_of(ctx.store, identities)
    counts["rows"] = await _remove_rows(ctx, job, identities)
    await progress("rows")
    counts["activity_daily"] = await rollups.recompute_days(ctx.store, job.organization_id, days)
    await progress("rollups")
    counts["redis_keys_cleared"] = await _clear_redis(ctx, job, identities)
    await progress("redis")
    if not ctx.settings.embedded_clickhouse:
        await asyncio.sleep(SWEEP_GRACE_S)
    late_days = await rollups.days_of(ctx.store, identities)
    late = await _remove_rows(ctx, job, identities)
    if late:
        counts["rows_stored_during_erasure"] = late
        counts["activity_daily"] = await rollups.recompute_days(ctx.store, job.organization_id, sorted(set(days) | set(late_days)))
    await progress("sweep")
    counts["exports_removed"] = await _forget(ctx, job, identities)
    finished = replace(job, user_id="", status=COMPLETED, completed_at=now(), counts=counts, step="forget", steps_done=job.steps_total)
    # First the final row, naming nobody; then every row naming the person (the job's earlier
    # rows, their export jobs).
    await JobStore(ctx.store).save(finished)
    await ctx.store.execute(
        f"DELETE FROM {JOBS_TABLE} WHERE organization_id = {{org:String}} AND user_id IN ({{id:String}}, {{alias:String}})",
        identities,
    )
    await write_now(
        ctx.store,
        AuditEntry(
            organization_id=job.organization_id,
            actor=job.requested_by,
            actor_role=job.requester_role,
            action="erasure.completed",
            target=f"erasure:{job.job_id}",
            detail={"rows": counts["rows"], "reports_expired": counts["reports_expired"], "exports_removed": counts["exports_removed"]},
        ),
    )
    return finished
