"""The crash test's other hands, each a process of its own because chDB has
one owner per data dir and the worker under test owns it while it runs:

    python -m tests.report_crash_tool submit DATA_DIR REDIS_URL ORG N
        read models of ORG with enough rows that a report takes a moment,
        and N learner-activity jobs submitted as the API submits them
    python -m tests.report_crash_tool dump DATA_DIR ORG
        every job's history and leftovers (staging tables), as JSON on the last line
"""

from __future__ import annotations

import asyncio
import sys

import orjson
from redis.asyncio import Redis

from lms_events.clickhouse import ChdbStore
from lms_events.migrations import migrate
from lms_events.tokens import Principal, Role
from analytics.scope import Scope
from reports.ledger import Ledger
from reports.models import OutputRequest, ReportJobRequest
from reports.queue import ReportQueue
from reports.submit import new_job, submit

LEARNERS = 20_000
ACTIVITY_ROWS = 60_000
FORMATS = ("csv", "json", "xlsx", "parquet")


async def _submit(data_dir: str, redis_url: str, org: str, count: int) -> None:
    store = ChdbStore(f"{data_dir}/clickhouse", "lms_events")
    redis = Redis.from_url(redis_url)
    try:
        await migrate(store)
        params = {"org": org}
        await store.execute(
            "INSERT INTO learners SELECT {org:String}, concat('u', toString(number)), now64(3), "
            f"argMaxState('dep_a', now64(3)), argMaxState('student', now64(3)) FROM numbers({LEARNERS}) GROUP BY number",
            params,
        )
        await store.execute(
            "INSERT INTO learner_activity_daily (organization_id, user_id, event_date, course_id, class_id, department_id, "
            "events, learning_ms, time_ms, score_sum, score_count, last_at) "
            f"SELECT {{org:String}}, concat('u', toString(number % {LEARNERS})), today() - (number % 30), 'c1', '', 'dep_a', "
            f"1, 60000, 60000, 80, 1, now64(3) FROM numbers({ACTIVITY_ROWS})",
            params,
        )
        ledger, queue = Ledger(store, redis), ReportQueue(redis)
        await queue.ensure_group()
        scope = Scope.of(Principal("admin", Role.SUBSCRIBER_ADMIN, org))
        ids = []
        for n in range(count):
            request = ReportJobRequest(
                report_type="learner-activity", name=f"crash {n}", output=OutputRequest(format=FORMATS[n % len(FORMATS)])
            )
            ids.append((await submit(ledger, queue, new_job(request, scope, org))).job.id)
        print(orjson.dumps(ids).decode())  # the last line (logs go to stdout too)
    finally:
        await redis.aclose()
        await store.close()


async def _dump(data_dir: str, org: str) -> None:
    store = ChdbStore(f"{data_dir}/clickhouse", "lms_events")
    try:
        rows = await store.query(
            "SELECT job_id, groupArray((version, transition, status, ifNull(storage_path, ''))) AS history "
            "FROM (SELECT * FROM report_jobs WHERE organization_id = {org:String} ORDER BY version) GROUP BY job_id",
            {"org": org},
        )
        staging = await store.query("SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'report_rows_%'")
        print(orjson.dumps({"jobs": rows, "staging_tables": [r["name"] for r in staging]}).decode())
    finally:
        await store.close()


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "submit":
        asyncio.run(_submit(args[0], args[1], args[2], int(args[3])))
    else:
        asyncio.run(_dump(args[0], args[1]))
