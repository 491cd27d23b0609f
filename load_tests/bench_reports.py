"""A 1,000,000-row report (learner-activity over 1M learners) as CSV, XLSX
and Parquet: seconds and peak RSS of the worker process, per format.

Each format runs in a worker process of its own on a chDB data dir that
another process loaded: the worker opens it, stages the report's rows (the
query, inside chDB, in this process) and writes them chunk by chunk. Peak RSS
(sampled every 20 ms) includes the chDB engine, in-process under `up`:
`peak_rss_query_mb` while the report's query stages its rows (chDB's
memory), `peak_rss_writing_mb` while they are written; `rss_chdb_open_mb` is what it holds with no data,
`rss_at_start_mb` the process as the report starts. The `*_anon_mb` / `*_file_mb` figures split
RSS as the kernel does: file pages (chDB's library mapped in) and heap (chDB's allocator, Arrow,
Python), at open, at the query's peak, after it, while writing, at the end, and after
`SYSTEM JEMALLOC PURGE` (what chDB's allocator only kept cached); `writing_peak_arrow_mb` is
Arrow's own allocation at its peak while writing.

`--writer-only`: the writers alone in a process that never loads chDB (the worker's part with a
ClickHouse server): the same number of rows as presented chunks built in Arrow.

    PYTHONPATH=. python load_tests/bench_reports.py [--rows 1000000] [--formats csv,xlsx,parquet] [--writer-only]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import pyarrow as pa

ORG = "org_bench"


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def _rss_parts_mb() -> dict[str, int]:
    """RSS split as the kernel counts it: RssFile (mapped files: chDB's ~330 MB library, shared, evictable)
    and RssAnon (heaps: chDB's allocator, Arrow, Python)."""
    with open("/proc/self/status") as status:
        parts = dict(re.findall(r"^(RssAnon|RssFile):\s+(\d+) kB", status.read(), re.M))
    return {"anon": int(parts["RssAnon"]) // 1024, "file": int(parts["RssFile"]) // 1024}


class _Sampler:
    """The highest current RSS while a report runs (ru_maxrss keeps the load's high-water mark)."""

    def __init__(self) -> None:
        self.peak = self.start = _rss_mb()
        self.peak_anon = _rss_parts_mb()["anon"]
        self.peak_arrow = pa.total_allocated_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mb())
            self.peak_anon = max(self.peak_anon, _rss_parts_mb()["anon"])
            self.peak_arrow = max(self.peak_arrow, pa.total_allocated_bytes())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


async def _load(rows: int, data_dir: Path) -> None:
    from lms_events.clickhouse import ChdbStore
    from lms_events.migrations import migrate

    store = ChdbStore(str(data_dir / "clickhouse"), "lms_events")
    await migrate(store)
    await store.execute(
        "INSERT INTO learners SELECT {org:String}, concat('u', toString(number)), now64(3), "
        f"argMaxState('dep_a', now64(3)), argMaxState('student', now64(3)) FROM numbers({rows}) GROUP BY number",
        {"org": ORG},
    )
    await store.execute(
        "INSERT INTO learner_activity_daily (organization_id, user_id, event_date, course_id, class_id, department_id, "
        "events, learning_ms, time_ms, score_sum, score_count, last_at) "
        "SELECT {org:String}, concat('u', toString(number)), today() - (number % 30), 'c1', '', 'dep_a', "
        f"1 + number % 7, 60000 * (number % 90), 60000, 50 + number % 50, 1, now64(3) FROM numbers({rows})",
        {"org": ORG},
    )
    await store.close()


async def _one(output_format: str, rows: int, data_dir: Path) -> dict[str, object]:
    from analytics.scope import Scope
    from lms_events.clickhouse import ChdbStore
    from lms_events.tokens import Principal, Role
    from reports.generate import generate
    from reports.ledger import StoredJob
    from reports.models import OutputRequest, Parameters, ReportJobRequest
    from lms_events.settings import Settings
    from reports.storage import ReportFiles
    from reports.submit import new_job

    store = ChdbStore(str(data_dir / "clickhouse"), "lms_events")
    opened_mb = _rss_mb()  # the chDB engine in this process, its data on disk
    opened = _rss_parts_mb()
    scope = Scope.of(Principal("admin", Role.SUBSCRIBER_ADMIN, ORG))
    request = ReportJobRequest(
        report_type="learner-activity", name="bench", output=OutputRequest(format=output_format),
        parameters=Parameters(include_inactive=True),
    )  # fmt: skip
    stored: StoredJob = new_job(request, scope, ORG)
    stages: dict[str, float] = {}
    sampler = _Sampler()
    started = time.perf_counter()

    async def progress(p: object) -> bool:
        step = getattr(p, "current_step", "")
        if step not in stages:
            stages[step] = time.perf_counter() - started
            if step == "writing":  # the query is done: from here on the peak is the writer's
                stages["query_peak_mb"] = sampler.peak
                stages["query_peak_anon_mb"] = sampler.peak_anon
                after = _rss_parts_mb()
                stages["after_query_anon_mb"], stages["after_query_file_mb"] = after["anon"], after["file"]
                sampler.peak = _rss_mb()
                sampler.peak_anon = after["anon"]
                sampler.peak_arrow = pa.total_allocated_bytes()
        return True

    location, final = await generate(store, ReportFiles(Settings(data_dir=data_dir)), stored, dropped_after_days=30, on_progress=progress)
    seconds = time.perf_counter() - started
    sampler.stop()
    size = (data_dir / "reports" / str(location.path)).stat().st_size
    ended = _rss_parts_mb()
    # what chDB's allocator (jemalloc) keeps cached after the query, handed back to the OS
    await store.execute("SYSTEM JEMALLOC PURGE")
    purged = _rss_parts_mb()
    await store.close()
    assert final.total_records == rows
    return {
        "format": output_format, "rows": rows, "seconds": round(seconds, 2),
        "first_chunk_seconds": round(stages.get("writing", seconds), 2), "rss_at_start_mb": round(sampler.start),
        "peak_rss_query_mb": round(stages.get("query_peak_mb", 0)), "peak_rss_writing_mb": round(sampler.peak), "rss_chdb_open_mb": round(opened_mb), "file_mb": round(size / 2**20, 1),
        "open_anon_mb": opened["anon"], "open_file_mb": opened["file"],
        "query_peak_anon_mb": stages.get("query_peak_anon_mb"), "after_query_anon_mb": stages.get("after_query_anon_mb"),
        "writing_peak_anon_mb": sampler.peak_anon, "writing_peak_arrow_mb": round(sampler.peak_arrow / 2**20),
        "end_anon_mb": ended["anon"], "purged_anon_mb": purged["anon"], "purged_file_mb": purged["file"],
    }  # fmt: skip


def _writer_only(output_format: str, rows: int, out_dir: Path) -> dict[str, object]:
    """The worker's own part, without chDB in the process (as with a ClickHouse server): the same
    1M rows as presented chunks of CHUNK_ROWS, built here in Arrow, through the format's writer."""
    from reports.rows import CHUNK_ROWS
    from reports.writers import Document, open_writer

    assert "chdb" not in sys.modules
    start = _rss_parts_mb()
    columns = ("userId", "events", "activeDays", "learningHours", "averageScore", "lastActiveAt", "coursesEnrolled", "coursesCompleted")
    document = Document(
        title="bench", report_type="learner-activity", generated_at="2026-12-02T00:00:00.000Z", parameters={},
        columns=columns, summary={}, chart=[], chart_label="", total_rows=rows,
    )  # fmt: skip
    sampler = _Sampler()
    started = time.perf_counter()
    writer = open_writer(output_format, out_dir / f"bench.{output_format}", document)
    for first in range(0, rows, CHUNK_ROWS):
        n = pa.array(range(first, min(first + CHUNK_ROWS, rows)), type=pa.int64())
        chunk = pa.table(
            [
                pa.array([f"u{i}" for i in n.to_pylist()]), n, n, pa.array([i % 90 / 60 for i in n.to_pylist()]),
                pa.array([50.0 + i % 50 for i in n.to_pylist()]), pa.array(["2026-12-02T10:00:00.000Z"] * len(n)), n, n,
            ],
            names=list(columns),
        )  # fmt: skip
        writer.write(chunk)
    writer.close()
    seconds = time.perf_counter() - started
    sampler.stop()
    return {
        "format": output_format, "rows": rows, "writer_only": True, "seconds": round(seconds, 2),
        "rss_start_mb": round(sampler.start), "peak_rss_mb": round(sampler.peak), "start_anon_mb": start["anon"],
        "start_file_mb": start["file"], "peak_anon_mb": sampler.peak_anon, "peak_arrow_mb": round(sampler.peak_arrow / 2**20),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="csv,xlsx,parquet")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--writer-only", action="store_true", help="the writers alone, without chDB in the process")
    args = parser.parse_args()
    if args.one:
        if args.writer_only:
            print(orjson.dumps(_writer_only(args.one, args.rows, Path(args.dir))).decode())
        else:
            print(orjson.dumps(asyncio.run(_one(args.one, args.rows, Path(args.dir)))).decode())
        return
    for output_format in args.formats.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            if not args.writer_only:
                asyncio.run(_load(args.rows, Path(tmp)))
            done = subprocess.run(
                [sys.executable, __file__, "--one", output_format, "--rows", str(args.rows), "--dir", tmp,
                 *(["--writer-only"] if args.writer_only else [])],
                capture_output=True, text=True,
            )  # fmt: skip
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            continue
        print(done.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
