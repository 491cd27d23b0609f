"""Where report jobs live: their status and live progress in Redis, every
state durably in ClickHouse (`report_jobs`, sql/0030_report_jobs.sql).

A transition is a compare-and-set in Redis (one Lua script: is the
current status one the target may be reached from? then set it and bump
the job's version), followed by an append of the whole job at that
version to ClickHouse. Redis decides, so two workers or a worker and a
cancelling client never both win; ClickHouse keeps every state (the
history) and is what a restart reads. When Redis has no status for a job
(a Redis that lost its data) the latest ClickHouse row seeds it.

The script also keeps the new row itself in the job's hash, so a process
that dies between the compare-and-set and the ClickHouse append (a
SIGKILLed worker that had just completed a job) loses nothing: whoever
reads the job next (`reconcile`) appends that row, with the same dedup
token, if ClickHouse is behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import pyarrow as pa
from redis.asyncio import Redis

from analytics.params import decode_cursor, encode_cursor, iso_z, sql_time
from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import Conflict, NotFound
from lms_events.metrics import REPORT_JOBS
from reports import jobs
from reports.models import JobError, Output, Parameters, Progress, ReportJob, Storage
from reports.visibility import readable

TABLE = "report_jobs"
DOWNLOADS = "report_downloads"
KEY = "reports:job:{job_id}"
PROGRESS_FIELDS = ("currentStep", "percentage", "recordsProcessed", "totalRecords")
# A job's Redis hash lives this long after a final state; then its status is read from ClickHouse.
FINAL_TTL_S = 7 * 24 * 3600
# The status of a deleted job's hash: no transition starts from it.
DELETED = "deleted"

_TIME = pa.timestamp("ms", tz="UTC")
# The columns of report_jobs, in the migration's order, with their Arrow types.
COLUMNS: dict[str, pa.DataType] = {
    "organization_id": pa.string(), "job_id": pa.string(), "version": pa.uint64(), "transition": pa.string(),
    "deleted": pa.uint8(), "report_type": pa.string(), "name": pa.string(), "description": pa.string(),
    "parameters": pa.string(), "output_format": pa.string(), "output_filename": pa.string(),
    "storage_provider": pa.string(), "storage_path": pa.string(), "storage_bucket": pa.string(),
    "storage_key": pa.string(), "storage_url": pa.string(), "storage_expires_at": _TIME, "status": pa.string(),
    "priority": pa.string(), "current_step": pa.string(), "percentage": pa.float64(),
    "records_processed": pa.uint64(), "total_records": pa.uint64(), "scheduled_for": _TIME, "started_at": _TIME,
    "completed_at": _TIME, "expires_at": _TIME, "error_code": pa.string(), "error_message": pa.string(),
    "error_stack": pa.string(), "retry_count": pa.uint32(), "last_retry_at": _TIME, "requested_by": pa.string(),
    "requester_role": pa.string(), "requester_departments": pa.list_(pa.string()), "department_id": pa.string(),
    "visibility": pa.string(), "template_id": pa.string(), "schedule_id": pa.string(), "created_at": _TIME,
    "updated_at": _TIME,
}  # fmt: skip
SCHEMA = pa.schema([pa.field(name, kind) for name, kind in COLUMNS.items()])

# KEYS[1] the job's hash; ARGV: target status, the status ClickHouse last
# recorded (used only when Redis has none), its version, the new row (JSON,
# its version set by whoever reads it back), then the statuses the target
# may be reached from. Returns {1, version} or {0, current status}.
_TRANSITION = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  status = ARGV[2]
  redis.call('HSET', KEYS[1], 'status', ARGV[2], 'version', ARGV[3])
end
for i = 5, #ARGV do
  if ARGV[i] == status then
    redis.call('HSET', KEYS[1], 'status', ARGV[1], 'row', ARGV[4])
    return {1, redis.call('HINCRBY', KEYS[1], 'version', 1)}
  end
end
return {0, status}
"""


def now_iso() -> str:
    return iso_z(datetime.now(UTC))  # type: ignore[return-value]


def instant(value: str | None) -> datetime | None:
    """A wire time (ISO 8601, Z) as a UTC datetime."""
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class StoredJob:
    """A job as stored: what the API shows, and what it does not (who asked, with which scope)."""

    job: ReportJob
    requester_role: str
    requester_departments: tuple[str, ...]
    version: int
    error_stack: str | None = None

    @property
    def key(self) -> str:
        return KEY.format(job_id=self.job.id)


def _row(stored: StoredJob, transition: str, deleted: bool = False) -> dict[str, Any]:
    job = stored.job
    storage = job.output.storage or Storage(provider="")
    progress = job.progress or Progress()
    error = job.error or JobError()
    return {
        "organization_id": job.organization_id, "job_id": job.id, "version": stored.version,
        "transition": transition, "deleted": int(deleted), "report_type": job.report_type, "name": job.name,
        "description": job.description, "parameters": msgspec.json.encode(job.parameters).decode(),
        "output_format": job.output.format, "output_filename": job.output.filename,
        "storage_provider": storage.provider or None, "storage_path": storage.path, "storage_bucket": storage.bucket,
        "storage_key": storage.key, "storage_url": storage.url, "storage_expires_at": instant(storage.expires_at),
        "status": job.status, "priority": job.priority, "current_step": progress.current_step,
        "percentage": progress.percentage, "records_processed": progress.records_processed,
        "total_records": progress.total_records, "scheduled_for": instant(job.scheduled_for),
        "started_at": instant(job.started_at), "completed_at": instant(job.completed_at),
        "expires_at": instant(job.expires_at), "error_code": error.code, "error_message": error.message,
        "error_stack": stored.error_stack, "retry_count": error.retry_count,
        "last_retry_at": instant(error.last_retry_at), "requested_by": job.requested_by,
        "requester_role": stored.requester_role, "requester_departments": list(stored.requester_departments),
        "department_id": job.department_id, "visibility": job.visibility, "template_id": job.template_id,
        "schedule_id": job.schedule_id, "created_at": instant(job.created_at), "updated_at": instant(job.updated_at),
    }  # fmt: skip


def _stored(row: dict[str, Any]) -> StoredJob:
    t = iso_z
    storage = None
    if row["storage_provider"]:
        storage = Storage(
            provider=row["storage_provider"], path=row["storage_path"], bucket=row["storage_bucket"],
            key=row["storage_key"], url=row["storage_url"], expires_at=t(row["storage_expires_at"]),
        )  # fmt: skip
    progress = None
    if row["current_step"] is not None:
        progress = Progress(
            current_step=row["current_step"], percentage=row["percentage"],
            records_processed=_int(row["records_processed"]), total_records=_int(row["total_records"]),
        )  # fmt: skip
    error = None
    if row["error_code"] is not None or int(row["retry_count"]):
        error = JobError(
            code=row["error_code"], message=row["error_message"], retry_count=int(row["retry_count"]),
            last_retry_at=t(row["last_retry_at"]),
        )  # fmt: skip
    job = ReportJob(
        id=row["job_id"], organization_id=row["organization_id"], report_type=row["report_type"], name=row["name"],
        status=row["status"], priority=row["priority"], visibility=row["visibility"],
        requested_by=row["requested_by"], parameters=msgspec.json.decode(row["parameters"], type=Parameters),
        output=Output(format=row["output_format"], filename=row["output_filename"], storage=storage),
        created_at=t(row["created_at"]), updated_at=t(row["updated_at"]), description=row["description"],
        progress=progress, scheduled_for=t(row["scheduled_for"]), started_at=t(row["started_at"]),
        completed_at=t(row["completed_at"]), expires_at=t(row["expires_at"]), error=error,
        department_id=row["department_id"], template_id=row["template_id"], schedule_id=row["schedule_id"],
    )  # fmt: skip
    return StoredJob(job, row["requester_role"], tuple(row["requester_departments"]), int(row["version"]), row["error_stack"])


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


class Ledger:
    def __init__(self, store: ClickHouseStore, redis: Redis) -> None:
        self.store = store
        self.redis = redis
        self._transition = redis.register_script(_TRANSITION)

    async def _insert(self, row: dict[str, Any]) -> None:
        table = pa.Table.from_pylist([row], schema=SCHEMA)
        await self.store.insert_arrow(TABLE, table, dedup_token=f"{row['job_id']}:{row['version']}")

    async def _append(self, stored: StoredJob, transition: str, *, deleted: bool = False) -> None:
        await self._insert(_row(stored, transition, deleted))

    async def create(self, stored: StoredJob) -> StoredJob:
        row = _row(stored, "created")
        await self.redis.hset(stored.key, mapping={"status": stored.job.status, "version": stored.version, "row": orjson.dumps(row)})
        await self._insert(row)
        REPORT_JOBS.labels(stored.job.status).inc()
        return stored

    async def reconcile(self, stored: StoredJob) -> StoredJob:
        """The job as its last transition left it: the row Redis kept, appended if ClickHouse missed it."""
        version, row = await self.redis.hmget(stored.key, ["version", "row"])
        if version is None or row is None or int(version) <= stored.version:
            return stored
        latest = orjson.loads(row)
        latest["version"] = int(version)
        for column, kind in COLUMNS.items():
            if kind == _TIME and latest[column] is not None:
                latest[column] = datetime.fromisoformat(latest[column])
        await self._insert(latest)
        return _stored(latest)

    async def transition(
        self, stored: StoredJob, target: str, *, name: str | None = None, error_stack: str | None = None, **changes: Any
    ) -> StoredJob:
        """The job moved to `target` with `changes` applied, or Conflict naming its current status."""
        job = msgspec.structs.replace(stored.job, status=target, updated_at=now_iso(), **changes)
        moved = StoredJob(job, stored.requester_role, stored.requester_departments, 0, error_stack)
        row = _row(moved, name or target)
        won, value = await self._transition(
            keys=[stored.key], args=[target, stored.job.status, stored.version, orjson.dumps(row), *jobs.sources_of(target)]
        )
        if not won:
            current = value.decode() if isinstance(value, bytes) else str(value)
            raise Conflict(f"a {current} job cannot become {target}", field="status")
        row["version"] = int(value)
        REPORT_JOBS.labels(target).inc()
        if target in jobs.FINAL:
            # Past a final state the hash only answers stale messages; ClickHouse has the job for good.
            await self.redis.expire(stored.key, FINAL_TTL_S)
        await self._insert(row)
        return StoredJob(job, stored.requester_role, stored.requester_departments, int(value), error_stack)

    async def delete(self, stored: StoredJob) -> None:
        # The hash stays, saying `deleted` (no transition starts there), until it expires: a worker
        # finishing this job meanwhile cannot complete it.
        await self.redis.hset(stored.key, "status", DELETED)
        version = int(await self.redis.hincrby(stored.key, "version", 1))
        await self.redis.expire(stored.key, FINAL_TTL_S)
        gone = StoredJob(stored.job, stored.requester_role, stored.requester_departments, version)
        await self._append(gone, "deleted", deleted=True)

    async def expire_now(self, stored: StoredJob, transition: str) -> None:
        """The job's file expired at once (it may hold a person since erased): a download is
        410 from now on, and the cleanup pass removes the job. Not a status change."""
        at = now_iso()
        output = stored.job.output
        if output.storage is not None:
            output = msgspec.structs.replace(output, storage=msgspec.structs.replace(output.storage, expires_at=at))
        job = msgspec.structs.replace(stored.job, expires_at=at, output=output, updated_at=at)
        # Past the version Redis may hold, so a `reconcile` never puts the old row back.
        version = max(int(await self.redis.hincrby(stored.key, "version", 1)), stored.version + 1)
        await self.redis.hset(stored.key, mapping={"version": version})
        await self.redis.hdel(stored.key, "row")
        await self._append(StoredJob(job, stored.requester_role, stored.requester_departments, version, stored.error_stack), transition)

    async def _latest(self, where: str, params: dict[str, Any], tail: str = "") -> list[dict[str, Any]]:
        return await self.store.query(
            f"""SELECT * FROM (SELECT * FROM {TABLE} WHERE {where}
                               ORDER BY version DESC LIMIT 1 BY organization_id, job_id)
                WHERE deleted = 0 {tail}""",
            params,
        )

    async def find(self, organization_id: str, job_id: str) -> StoredJob | None:
        """The job's current state whoever asks (the worker's view)."""
        rows = await self._latest(
            "organization_id = {org:String} AND job_id = {job:String}", {"org": organization_id, "job": job_id}
        )
        return await self.reconcile(_stored(rows[0])) if rows else None

    async def visible(self, scope: Scope, job_id: str) -> StoredJob:
        """The job if the caller may see it; else NotFound (existence does not leak)."""
        rows = await self._latest(
            f"{scope.organizations()} AND job_id = {{job:String}}", {**scope.params, "job": job_id}, f"AND {readable(scope)}"
        )
        if not rows:
            raise NotFound("no report job with this id in your scope", field="id")
        return await self.live(await self.reconcile(_stored(rows[0])))

    async def page(
        self,
        scope: Scope,
        filters: dict[str, str],
        limit: int,
        cursor: str | None,
        *,
        created: tuple[datetime | None, datetime | None] = (None, None),
    ) -> tuple[list[StoredJob], str | None]:
        """Newest first by (createdAt, id); `filters` are column -> value (status, report_type, priority, ...),
        `created` an optional [after, before) of createdAt."""
        params: dict[str, Any] = {**scope.params, "limit": limit + 1}
        tail = f"AND {readable(scope)}"
        for column, value in filters.items():
            params[f"f_{column}"] = value
            tail += f" AND {column} = {{f_{column}:String}}"
        for bound, name, operator in ((created[0], "created_after", ">="), (created[1], "created_before", "<")):
            if bound is not None:
                params[name] = sql_time(bound)
                tail += f" AND created_at {operator} toDateTime64({{{name}:String}}, 3, 'UTC')"
        after = decode_cursor({"cursor": cursor} if cursor else {}, 2)
        if after is not None:
            params["after_at"], params["after_id"] = after
            tail += " AND (created_at, job_id) < (toDateTime64({after_at:String}, 3, 'UTC'), {after_id:String})"
        rows = await self._latest(scope.organizations(), params, f"{tail} ORDER BY created_at DESC, job_id DESC LIMIT {{limit:UInt32}}")
        page = [await self.live(_stored(row)) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            created = last["created_at"]
            next_cursor = encode_cursor([sql_time(created) if isinstance(created, datetime) else str(created), last["job_id"]])
        return page, next_cursor

    async def history(self, organization_id: str, job_id: str) -> list[dict[str, Any]]:
        return await self.store.query(
            f"SELECT version, transition, status, updated_at FROM {TABLE} "
            "WHERE organization_id = {org:String} AND job_id = {job:String} ORDER BY version",
            {"org": organization_id, "job": job_id},
        )

    async def status(self, job_id: str) -> str | None:
        value = await self.redis.hget(KEY.format(job_id=job_id), "status")
        return value.decode() if value is not None else None

    async def set_progress(self, job_id: str, progress: Progress) -> None:
        fields = {name: value for name, value in msgspec.to_builtins(progress).items() if value is not None}
        await self.redis.hset(KEY.format(job_id=job_id), mapping={f"p:{k}": orjson.dumps(v) for k, v in fields.items()})

    async def live(self, stored: StoredJob) -> StoredJob:
        """A running job with its live progress from Redis (ClickHouse has it only per transition)."""
        if stored.job.status != jobs.RUNNING:
            return stored
        raw = await self.redis.hmget(stored.key, [f"p:{name}" for name in PROGRESS_FIELDS])
        live = {msgspec.structs.fields(Progress)[n].name: orjson.loads(v) for n, v in enumerate(raw) if v is not None}
        if not live:
            return stored
        job = msgspec.structs.replace(stored.job, progress=Progress(**live))
        return StoredJob(job, stored.requester_role, stored.requester_departments, stored.version, stored.error_stack)

    async def record_download(self, stored: StoredJob, user_id: str) -> None:
        table = pa.table(
            {
                "organization_id": [stored.job.organization_id],
                "job_id": [stored.job.id],
                "downloaded_by": [user_id],
                "downloaded_at": pa.array([datetime.now(UTC)], type=_TIME),
            }
        )
        await self.store.insert_arrow(DOWNLOADS, table, dedup_token=f"{stored.job.id}:{user_id}:{datetime.now(UTC).isoformat()}")
