"""The runs of report schedules (`report_schedule_runs`): each job a
schedule created, why (scheduled, catch-up, manual), for which due
instant, and to whom its report goes; read back as a schedule's history
(with each job's status now), its last run, and the last due instant the
scheduler fired (where it picks up after a restart).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from analytics.params import decode_cursor, encode_cursor, iso_z, sql_time
from lms_events.clickhouse import ClickHouseStore
from reports.ledger import TABLE as JOBS_TABLE
from reports.ledger import instant
from reports.plan_models import ScheduleRun

TABLE = "report_schedule_runs"
SCHEDULED, CATCH_UP, MANUAL = "scheduled", "catch-up", "manual"
SCHEMA = pa.schema([
    ("organization_id", pa.string()), ("schedule_id", pa.string()), ("due_at", pa.timestamp("ms", tz="UTC")),
    ("job_id", pa.string()), ("trigger", pa.string()), ("missed", pa.uint32()), ("recipients", pa.list_(pa.string())),
    ("created_at", pa.timestamp("ms", tz="UTC")),
])  # fmt: skip


@dataclass(frozen=True)
class Run:
    organization_id: str
    schedule_id: str
    due_at: datetime
    job_id: str
    trigger: str
    missed: int
    recipients: tuple[str, ...]
    created_at: datetime


def _time(value: Any) -> str:
    """A DateTime64 as either driver answers it, in wire form."""
    return iso_z(value)  # type: ignore[return-value]


def _instant(value: Any) -> datetime:
    return instant(_time(value))  # type: ignore[return-value]


class RunLog:
    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store

    async def record(self, run: Run) -> None:
        row = {**run.__dict__, "recipients": list(run.recipients)}
        table = pa.Table.from_pylist([row], schema=SCHEMA)
        await self.store.insert_arrow(TABLE, table, dedup_token=f"{run.schedule_id}:{run.job_id}")

    async def last_dues(self) -> dict[tuple[str, str], datetime]:
        """(organization, schedule) -> the latest due instant the scheduler fired (manual runs aside)."""
        rows = await self.store.query(
            f"""SELECT organization_id, schedule_id, max(due_at) AS last_due FROM {TABLE}
                WHERE trigger != '{MANUAL}' GROUP BY organization_id, schedule_id"""
        )
        return {(row["organization_id"], row["schedule_id"]): _instant(row["last_due"]) for row in rows}

    async def last_runs(self, organization_id: str, schedule_ids: list[str]) -> dict[str, tuple[str, str]]:
        """schedule -> (createdAt, jobId) of its latest run, any trigger."""
        if not schedule_ids:
            return {}
        rows = await self.store.query(
            f"""SELECT schedule_id, max(created_at) AS at, argMax(job_id, created_at) AS job_id FROM {TABLE}
                WHERE organization_id = {{org:String}} AND schedule_id IN JSONExtract({{ids:String}}, 'Array(String)')
                GROUP BY schedule_id""",
            {"org": organization_id, "ids": orjson.dumps(schedule_ids).decode()},
        )
        return {row["schedule_id"]: (_time(row["at"]), row["job_id"]) for row in rows}

    async def history(
        self, organization_id: str, schedule_id: str, limit: int, cursor: str | None
    ) -> tuple[list[ScheduleRun], str | None]:
        """Newest first by (createdAt, jobId), each with its job's status now."""
        params: dict[str, Any] = {"org": organization_id, "schedule": schedule_id, "limit": limit + 1}
        after = decode_cursor({"cursor": cursor} if cursor else {}, 2)
        tail = ""
        if after is not None:
            params["after_at"], params["after_job"] = after
            tail = "AND (r.created_at, r.job_id) < (toDateTime64({after_at:String}, 3, 'UTC'), {after_job:String})"
        rows = await self.store.query(
            f"""SELECT r.job_id AS job_id, r.trigger AS trigger, r.due_at AS due_at, r.created_at AS created_at,
                       r.missed AS missed, j.status AS status, j.deleted AS deleted
                FROM (SELECT DISTINCT job_id, trigger, due_at, created_at, missed FROM {TABLE}
                      WHERE organization_id = {{org:String}} AND schedule_id = {{schedule:String}}) AS r
                LEFT JOIN (SELECT job_id, argMax(status, version) AS status, argMax(deleted, version) AS deleted
                           FROM {JOBS_TABLE} WHERE organization_id = {{org:String}} AND schedule_id = {{schedule:String}}
                           GROUP BY job_id) AS j ON j.job_id = r.job_id
                WHERE 1 {tail}
                ORDER BY r.created_at DESC, r.job_id DESC LIMIT {{limit:UInt32}}
                SETTINGS join_use_nulls = 1""",
            params,
        )
        items = [
            ScheduleRun(
                job_id=row["job_id"], trigger=row["trigger"], due_at=_time(row["due_at"]), created_at=_time(row["created_at"]),
                missed=int(row["missed"]), status=None if row["deleted"] in (None, 1) else row["status"],
            )
            for row in rows[:limit]
        ]  # fmt: skip
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor([sql_time(_instant(last["created_at"])), last["job_id"]])
        return items, next_cursor

    async def of_job(self, organization_id: str, schedule_id: str, job_id: str) -> Run | None:
        rows = await self.store.query(
            f"""SELECT * FROM {TABLE} WHERE organization_id = {{org:String}} AND schedule_id = {{schedule:String}}
                AND job_id = {{job:String}} LIMIT 1""",
            {"org": organization_id, "schedule": schedule_id, "job": job_id},
        )
        if not rows:
            return None
        row = rows[0]
        return Run(
            row["organization_id"], row["schedule_id"], _instant(row["due_at"]), row["job_id"], row["trigger"],
            int(row["missed"]), tuple(row["recipients"]), _instant(row["created_at"]),
        )
