"""Analyst SQL benchmark: five typical queries through POST /api/v1/query, and what the guard costs.

    PYTHONPATH=. python load_tests/bench_analyst_sql.py [--events 10000000] [--repeat 30] [--work-dir DIR]

Generates the analytics benchmark's data set (analytics_data.py: 5
organizations, N events over 400 days) into chDB in this process, then
serves only the analyst routes (add_query_api) on a local port and, as
bench-org-0's subscriber-admin, one request at a time, runs each query
`--repeat` times:

    api     POST /api/v1/query, JSON answer read in full (guard, engine, audit row, HTTP)
    engine  the text the guard printed, run on the store directly (same filters and settings)
    guard   guard() alone, first sight of the text: parse (parseQueryToJSON), check, print
            (formatQueryFromJSON); then `cached`, the same text again (its plan is kept)

Target (issue 12): guard overhead under 5 ms per query.

Measured 2026-12-02 on the 2-core dev machine, 10M events (generation 36 s), 30 runs:

    query                                 api p50/p95      engine p50/p95   guard p50/p95  cached
    events per day, a month               11.4 / 16.0 ms    4.0 /   6.0 ms  2.6 / 6.0 ms   0.0 ms
    top courses by completions            10.6 / 18.2 ms    2.9 /   4.1 ms  2.7 / 6.1 ms   0.0 ms
    a learner's timeline                  86.7 / 212.1 ms  73.4 / 154.8 ms  3.1 / 7.9 ms   0.0 ms
    funnel start -> complete -> mastered  23.5 / 28.1 ms   14.2 /  16.3 ms  3.0 / 6.4 ms   0.0 ms
    score distribution per class          39.0 / 55.6 ms   26.2 /  42.7 ms  3.2 / 5.6 ms   0.0 ms

The guard meets the target at p50 on first sight and always once a text was seen; its p95 on
first sight (5.6-7.9 ms) does not. The rest of api - engine is the audit insert (~3-4 ms) and HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from analytics.analyst.app import add_query_api
from analytics.analyst.catalog import Catalog
from analytics.analyst.guard import guard
from analytics.analyst.keys import CATALOG, LIMITS
from analytics.keys import JWT_SECRET, SETTINGS, STORE
from ingest.handlers import error_middleware
from lms_events import tokens
from lms_events.clickhouse import ChdbStore
from lms_events.migrations import migrate
from lms_events.settings import Settings
from load_tests import analytics_data

ORG = "bench-org-0"
SECRET = b"bench-secret-bench-secret-bench-secret"
LEARNER = analytics_data.users_of_departments({analytics_data.department(0)})[0]
QUERIES = {
    "events per day, a month": (
        ("SELECT event_date, sum(events) AS events FROM activity_daily "
         "WHERE event_date >= today() - 30 GROUP BY event_date ORDER BY event_date"),
        {},
    ),
    "top courses by completions": (
        "SELECT course_id, count() AS completions FROM course_completions GROUP BY course_id ORDER BY completions DESC LIMIT 10",
        {},
    ),
    "a learner's timeline": (
        "SELECT timestamp, event_type, course_id, score FROM events WHERE user_id = {u:String} ORDER BY timestamp DESC LIMIT 500",
        {"u": LEARNER},
    ),
    "funnel start -> complete -> mastered": (
        ("SELECT level, count() AS users FROM (SELECT user_id, windowFunnel(86400)(toDateTime(timestamp), "
         "event_type = 'game_stage_start', event_type = 'game_stage_complete', event_type = 'concept_mastered') AS level "
         "FROM events WHERE timestamp >= now() - INTERVAL 30 DAY GROUP BY user_id) GROUP BY level ORDER BY level"),
        {},
    ),
    "score distribution per class": (
        ("SELECT class_id, floor(score / 10) * 10 AS bucket, count() AS events FROM events "
         "WHERE score IS NOT NULL GROUP BY class_id, bucket ORDER BY class_id, bucket"),
        {},
    ),
}


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):7.1f} ms  p95 {p95:7.1f} ms"


async def generate(store: ChdbStore, total: int) -> None:
    today = datetime.now(UTC).date()
    for _, sql, params in analytics_data.fact_statements(today):
        await store.execute(sql, params)
    for _, sql, params in analytics_data.event_statements(today, total):
        await store.execute(sql, params)
    for table in ("events", "activity_daily", "domain_facts", "course_completions"):
        await store.execute(f"OPTIMIZE TABLE {table} FINAL")


async def main(events: int, repeat: int, work_dir: Path) -> None:
    settings = Settings(data_dir=work_dir, kafka_bootstrap_servers=None, redis_url=None)
    store = ChdbStore(str(work_dir / "clickhouse"), settings.clickhouse_database)
    await migrate(store)
    started = time.monotonic()
    await generate(store, events)
    print(f"generated {events:,} events in {time.monotonic() - started:.1f} s")
    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS], app[STORE], app[JWT_SECRET] = settings, store, SECRET
    add_query_api(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    bearer = tokens.mint(SECRET, sub="bench", role="subscriber-admin", organization_id=ORG)
    catalog: Catalog = app[CATALOG]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {bearer}"}) as session:
        for name, (sql, params) in QUERIES.items():
            api, engine, checks, cached = [], [], [], []
            for _ in range(repeat):
                catalog.plans.clear()  # the API request checks the text afresh too
                t = time.perf_counter()
                async with session.post(f"http://{host}:{port}/api/v1/query", json={"sql": sql, "params": params}) as response:
                    await response.read()
                    assert response.status == 200, await response.text()
                api.append((time.perf_counter() - t) * 1000)
                catalog.plans.clear()
                t = time.perf_counter()
                checked = await guard(store, catalog, sql, params, ORG, app[LIMITS])
                checks.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                await guard(store, catalog, sql, params, ORG, app[LIMITS])
                cached.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                await store.query_bytes(checked.sql, "JSON", checked.params)
                engine.append((time.perf_counter() - t) * 1000)
            print(
                f"{name:38s} api {percentiles(api)} | engine {percentiles(engine)} | "
                f"guard {percentiles(checks)} | cached {percentiles(cached)}"
            )
    await runner.cleanup()
    await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--work-dir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-analyst-") as tmp:
        asyncio.run(main(args.events, args.repeat, args.work_dir or Path(tmp)))
