"""A worker killed mid-run loses no report job and runs none twice to completion.

50 jobs are submitted; `lms-events reports` (a process of its own, owning
its chDB data dir) starts on them and is killed with SIGKILL while jobs
run; a second one takes over the dead consumer's messages (XAUTOCLAIM
after the visibility timeout) and the queue. Then: every job completed,
each exactly once, the interrupted ones restarted, their files in place,
no partial file and no staging table left.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
from redis.asyncio import Redis

from tests.support import eventually, unique_org

JOBS = 50
ROOT = Path(__file__).resolve().parent.parent


def _env(data_dir: Path, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LMS_EVENTS_DATA_DIR": str(data_dir),
        "REDIS_URL": redis_url,
        "LMS_EVENTS_REPORTS_VISIBILITY_S": "2",
        "LMS_EVENTS_REPORTS_CONCURRENCY": "4",
        "LMS_EVENTS_LOG_FORMAT": "json",
    }


async def _tool(env: dict[str, str], *args: str) -> str:
    tool = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.report_crash_tool", *args, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(tool.communicate(), 120)
    assert tool.returncode == 0, err.decode()[-3000:]
    return out.decode().strip().splitlines()[-1]  # its answer; the lines before are logs


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "lms_events.cli", "reports"], env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def test_a_killed_worker_loses_no_job_and_completes_none_twice(redis_url: str, tmp_path: Path) -> None:
    # A Redis database of its own: the session gateway's worker reads database 0.
    isolated = redis_url.rsplit("/", 1)[0] + "/3"
    redis = Redis.from_url(isolated)
    await redis.flushdb()
    org = unique_org()
    env = _env(tmp_path / "data", isolated)
    job_ids = orjson.loads(await _tool(env, "submit", str(tmp_path / "data"), isolated, org, str(JOBS)))
    assert len(job_ids) == JOBS

    async def statuses() -> Counter[str]:
        values = [await redis.hget(f"reports:job:{job_id}", "status") for job_id in job_ids]
        return Counter(v.decode() for v in values if v)

    log = tmp_path / "worker.log"
    first = _worker(env, log)
    try:
        await eventually(statuses, lambda s: s["completed"] >= 3 and s["running"] >= 1, timeout=120)
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait, 10)
        at_kill = await statuses()
        assert at_kill["completed"] < JOBS and at_kill["running"] >= 1, at_kill
        running_at_kill = {j for j in job_ids if await redis.hget(f"reports:job:{j}", "status") == b"running"}

        second = _worker(env, log)
        try:
            await eventually(statuses, lambda s: s["completed"] == JOBS, timeout=180)
        finally:
            second.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(second.wait, 30) == 0, log.read_text()[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
        await redis.aclose()

    dump = orjson.loads(await _tool(env, "dump", str(tmp_path / "data"), org))
    histories = {row["job_id"]: row["history"] for row in dump["jobs"]}
    assert set(histories) == set(job_ids)
    for job_id, history in histories.items():
        transitions = [step[1] for step in history]
        assert transitions.count("completed") == 1, (job_id, transitions)
        assert transitions[:3] == ["created", "queued", "running"], (job_id, transitions)
        assert [step[0] for step in history] == sorted(step[0] for step in history)
        if job_id in running_at_kill:
            assert "restarted" in transitions, (job_id, transitions)
        path = history[-1][3]
        assert (tmp_path / "data" / "reports" / path).is_file()
    assert dump["staging_tables"] == []
    assert not list((tmp_path / "data" / "reports").rglob("*.partial"))
