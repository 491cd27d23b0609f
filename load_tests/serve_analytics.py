"""The process under test of bench_analytics.py: `lms-events up`'s shape on a benchmark data dir.

    serve_analytics.py --data-dir D --bootstrap B --redis R --jwt-secret S [--generate N] [--streams]

Owns the chDB data dir (one process may): migrates it, with `--generate N`
fills it (analytics_data.py: domain facts and N events, printed as
`GENERATED <json>`), then serves the gateway app with the analytics API
added (ingest.app.create_app + analytics.app.add_api, as `up` does) on a
free port, with `--streams` the Faust stream app beside it, and prints
`READY <port> <write key of bench-org-0> <write key of bench-ingest>`.

Benchmark-only routes: `GET /bench/raw-dashboard?timeframe=&until=`
computes the dashboard's seven figures (value and previous value) from
the raw tables (`events FINAL`, `domain_facts FINAL`) instead of the
read models, through the same store, for the ratio the rollups buy.
`GET /bench/profile` (with `--profile`): the chDB queries run since the
last call, by SQL shape: count, time inside chDB, rows read (chDB has no
system.query_log).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

import analytics_data  # noqa: E402
from analytics.app import add_api  # noqa: E402
from analytics.figures import hours, mean, percentage  # noqa: E402
from analytics.params import sql_time, window  # noqa: E402
from ingest.app import create_app  # noqa: E402
from lms_events.clickhouse import ClickHouseStore, open_store  # noqa: E402
from lms_events.logs import configure_logging  # noqa: E402
from lms_events.migrations import migrate  # noqa: E402
from lms_events.runtime import tune_gc_for_serving  # noqa: E402
from lms_events.settings import Settings  # noqa: E402
from lms_events.write_keys import create_key  # noqa: E402
from streams.app import create_stream_app  # noqa: E402

INGEST_ORG = "bench-ingest"
BENCH_STORE = web.AppKey("bench_store", ClickHouseStore)
ROLLUPS = (
    "events", "activity_daily", "learner_activity_daily", "learner_skills", "domain_facts", "enrollments",
    "course_completions", "module_completions", "assessment_attempts", "learners", "courses", "classes",
)


async def generate(store: ClickHouseStore, total: int) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    started = time.monotonic()
    for _, sql, params in analytics_data.fact_statements(today):
        await store.execute(sql, params)
    facts_s = time.monotonic() - started
    for _, sql, params in analytics_data.event_statements(today, total):
        await store.execute(sql, params)
    events_s = time.monotonic() - started - facts_s
    # What background merges do in a running system, done now so reads see a settled table
    # (the rollups' parts of one insert each are otherwise many and small).
    merge_started = time.monotonic()
    for table in ROLLUPS:
        await store.execute(f"OPTIMIZE TABLE {table} FINAL")
    merge_s = time.monotonic() - merge_started
    sizes = {}
    for table in ROLLUPS:
        rows = await store.query(
            "SELECT sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts "
            "WHERE database = currentDatabase() AND table = {t:String} AND active", {"t": table}
        )
        sizes[table] = [int(rows[0]["rows"] or 0), int(rows[0]["bytes"] or 0)]
    return {"facts_s": facts_s, "events_s": events_s, "merge_s": merge_s, "sizes": sizes, "today": today.isoformat()}


# The seven figures from raw rows: events FINAL for activity, domain_facts FINAL (deduplicated as
# METRICS.md says: pairs, earliest times) for the rest; value as of e / for [s, e), previous as of s.
RAW_DASHBOARD = """
WITH
    toDateTime64({s:String}, 3, 'UTC') AS s, toDateTime64({e:String}, 3, 'UTC') AS e,
    toDateTime64({ps:String}, 3, 'UTC') AS ps
SELECT
    (SELECT tuple(uniqExactIf(user_id, timestamp >= s AND user_id != ''), countIf(timestamp >= s),
                  sumIf(toFloat64(score), timestamp >= s), countIf(score IS NOT NULL AND timestamp >= s),
                  sumIf(duration_ms, event_category = 'learning_progress' AND timestamp >= s),
                  uniqExactIf(user_id, timestamp < s AND user_id != ''), sumIf(toFloat64(score), timestamp < s),
                  countIf(score IS NOT NULL AND timestamp < s),
                  sumIf(duration_ms, event_category = 'learning_progress' AND timestamp < s))
     FROM events FINAL WHERE organization_id = {org:String} AND timestamp >= ps AND timestamp < e) AS activity,
    (SELECT tuple(countIf(created < e), countIf(created < s)) FROM (
        SELECT user_id, min(occurred_at) AS created FROM domain_facts FINAL
        WHERE organization_id = {org:String} AND event_type = 'UserCreated' GROUP BY user_id)) AS users,
    (SELECT tuple(countIf(created < e), countIf(created < s)) FROM (
        SELECT course_id, min(occurred_at) AS created FROM domain_facts FINAL
        WHERE organization_id = {org:String} AND event_type = 'CourseCreated' GROUP BY course_id)) AS courses,
    (SELECT tuple(countIf(enrolled < e), countIf(enrolled < e AND completed < e),
                  countIf(enrolled < s), countIf(enrolled < s AND completed < s)) FROM (
        SELECT user_id, course_id, min(occurred_at) AS enrolled FROM domain_facts FINAL
        WHERE organization_id = {org:String} AND event_type = 'UserEnrolled' GROUP BY user_id, course_id) AS en
     LEFT JOIN (
        SELECT user_id, course_id, min(occurred_at) AS completed FROM domain_facts FINAL
        WHERE organization_id = {org:String} AND event_type = 'UserCompletedCourse' GROUP BY user_id, course_id) AS co
     USING (user_id, course_id)
     SETTINGS join_use_nulls = 1) AS enrollments
"""


PROFILE: dict[str, list[float]] = {}


def profile_queries(store: Any) -> None:
    """Time every chDB call inside the executor (no queueing), by the SQL's first 110 characters."""
    run = store._run

    def timed(sql: str, fmt: str, params: dict[str, Any] | None) -> Any:
        started = time.perf_counter()
        result = run(sql, fmt, params)
        entry = PROFILE.setdefault(" ".join(sql.split())[:110], [0, 0.0, 0])
        entry[0] += 1
        entry[1] += time.perf_counter() - started
        entry[2] += result.rows_read()
        return result

    store._run = timed


async def profile(request: web.Request) -> web.Response:
    shapes = sorted(PROFILE.items(), key=lambda item: -item[1][1])
    PROFILE.clear()
    return web.Response(body=orjson.dumps([[sql, n, seconds, rows] for sql, (n, seconds, rows) in shapes]), content_type="application/json")


async def raw_dashboard(request: web.Request) -> web.Response:
    store: ClickHouseStore = request.app[BENCH_STORE]
    current = window(request.query)
    previous = current.previous
    rows = await store.query(RAW_DASHBOARD, {
        "org": request.query.get("organizationId", analytics_data.BIG_ORG),
        "s": sql_time(current.start), "e": sql_time(current.end), "ps": sql_time(previous.start),
    })
    row = rows[0]
    active, events, score_sum, scored, learning_ms, p_active, p_score_sum, p_scored, p_learning_ms = row["activity"]
    enrolled, completed, p_enrolled, p_completed = (int(v) for v in row["enrollments"])
    figures = {
        "total_users": [int(v) for v in row["users"]],
        "active_users": [int(active), int(p_active)],
        "total_courses": [int(v) for v in row["courses"]],
        "total_enrollments": [enrolled, p_enrolled],
        "completion_rate": [percentage(completed, enrolled) or 0.0, percentage(p_completed, p_enrolled) or 0.0],
        "average_score": [mean(float(score_sum), int(scored)), mean(float(p_score_sum), int(p_scored))],
        "learning_hours": [hours(int(learning_ms)), hours(int(p_learning_ms))],
    }
    return web.Response(body=orjson.dumps({"figures": figures, "totalEvents": int(events)}), content_type="application/json")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--jwt-secret", required=True)
    parser.add_argument("--generate", type=int, default=0, help="events to generate (0: the data dir has them)")
    parser.add_argument("--streams", action="store_true", help="run the stream app too")
    parser.add_argument("--profile", action="store_true", help="time every chDB query (GET /bench/profile)")
    args = parser.parse_args()
    settings = Settings(
        environment="development",
        kafka_bootstrap_servers=args.bootstrap,
        redis_url=args.redis,
        data_dir=args.data_dir,
        jwt_secret=args.jwt_secret,
        rate_limit_events_per_s=10_000_000,
        rate_limit_burst=10_000_000,
        log_level="warning",
    )
    configure_logging(settings)
    store = await open_store(settings)
    await migrate(store)
    if args.generate:
        print(f"GENERATED {orjson.dumps(await generate(store, args.generate)).decode()}", flush=True)
    _, key = await create_key(store, organization_id=analytics_data.BIG_ORG, environment="development")
    _, ingest_key = await create_key(store, organization_id=INGEST_ORG, environment="development")
    app = create_app(settings, store=store)
    add_api(app, settings, store=store)
    app[BENCH_STORE] = store
    app.router.add_get("/bench/raw-dashboard", raw_dashboard)
    if args.profile:
        profile_queries(store)
        app.router.add_get("/bench/profile", profile)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stream_app = None
    if args.streams:
        stream_app = create_stream_app(settings, store)
        await stream_app.start()
    tune_gc_for_serving()
    print(f"READY {runner.addresses[0][1]} {key} {ingest_key}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        if stream_app is not None:
            await stream_app.stop()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
