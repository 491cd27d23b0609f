"""Analytics read API benchmark: latency of every endpoint over 10M events, the ratio the rollups buy,
ingest beside reads, dashboard freshness.

    PYTHONPATH=. python load_tests/bench_analytics.py [--events 10000000] [--ingest-seconds 10] [--work-dir DIR] [--profile]

Starts a Tansu broker and valkey (bench_services.py) and one server process
(serve_analytics.py: `lms-events up`'s shape, the gateway app with the
analytics API added, chDB in-process), which first generates the data
straight into ClickHouse by SQL (analytics_data.py: 5 organizations of
2,000 users and 200 courses, 100,000 enrollments, module and course
completions, 200,000 assessment attempts, N events over 400 days ending
today written through `event_loads`, so `events` and the rollups fill as
the sink fills them; then OPTIMIZE FINAL, what background merges do).
Figures read are those of `bench-org-0` (2,000 users, 1/5 of the events).
Then, over HTTP with tokens of that organization's roles
(subscriber-admin, teacher-admin of 2 departments, teacher of 10
classes, student), 8 concurrent readers (2 a role):
  1. every endpoint, uncached (each request carries a unique dummy query
     parameter, so its cache key misses: computed, then stored, as a real
     miss is) and cached (the same request repeated): p50/p95, and the
     slowest role's p95; plus one reader alone (service time, no queueing);
  2. the subscriber-admin dashboard for each timeframe against the same
     seven figures from raw rows (`events FINAL`, `domain_facts FINAL`, a
     benchmark-only route), both uncached, 8 readers: the ratio, and
     whether the figures are equal;
  3. ingest events/s through the gateway (bench_gateway.py's client loop,
     100-event gzip batches, 16 clients) alone and with the 8 readers
     beside it (uncached requests of every endpoint), and the ratio;
  4. freshness: the server restarted with the stream app, backlog of 3
     drained; one event posted for bench-org-0, the 7-day dashboard's
     `summary.totalEvents` (uncached) polled every 50 ms until it moves;
     p50/p95 over the samples.
Targets (issue 10): every endpoint p95 < 50 ms uncached; freshness p95 < 2 s.
`--profile` instead times each endpoint's chDB queries, one reader at a
time (serve_analytics.py wraps the store's calls: chDB has no query_log).

Measured 2026-12-02 on the 2-core dev machine, 10M events (generation
40.5 s: facts 3.3 s, events 27.2 s, OPTIMIZE FINAL 8.8 s; events 10.0M
rows 351 MiB, activity_daily 800k rows 21 MiB, learner_activity_daily
1.0M rows 28 MiB, learner_skills 374k, domain_facts 706k, enrollments
100k, module_completions 360k, attempts 200k). ms; alone = 1 reader:

    endpoint                          alone  unc p50  unc p95  c p50  c p95
    dashboard 7d                       57.5    623.3    741.0    2.1    6.5
    dashboard 30d                      72.4    649.3    764.0    2.0    3.4
    dashboard 90d                      97.1    726.0    814.4    2.0    3.1
    dashboard 1y                      125.0    912.5   1181.5    1.7    5.6
    dashboard 30d, course filter       85.9    765.9    783.5    2.3    4.9
    users/{id}/analytics               26.5    281.2    308.1    2.6    4.7
    courses/{id}/analytics             29.1    268.4    330.6    2.9    8.1
    assessments/{id}/analytics          7.6     66.4     84.1    1.4    3.2
    learning-progress, first page      82.7    503.7    568.9    0.8    2.6
    learning-progress, course+status   40.1    368.5    395.6    0.7    1.7
    events, first page                131.2   1351.8   1891.4    0.8    4.5
    events, one user, first page      137.7   1395.0   1831.2    1.2    9.9

Target p95 < 50 ms uncached with 8 readers: NOT MET by any endpoint;
cached every p95 <= 10 ms. Uncached p50 with 8 readers is 8-10x the
one-reader time for every role alike: ChdbStore runs every query on one
executor thread (a chDB session is not thread-safe), so 8 readers queue.
Rollups vs raw rows (subscriber-admin dashboard, figures equal for every
timeframe), p50 8 readers: 7d 433 vs 1,037 ms (x2.4), 30d 552 vs 1,573
(x2.8), 90d 835 vs 1,846 (x2.2), 1y 1,408 vs 2,549 (x1.8); alone, raw
114/199/218/354 ms against 57/72/97/125. Ingest (16 clients, 10 s):
alone 56,786 events/s, beside 8 uncached readers 41,507 (x0.73; server
CPU 67 % -> 124 %: chDB takes the second core; the gateway loop is not
blocked, p99 52 -> 120 ms), 7 reads/s meanwhile (p50 983 ms). Freshness
(event accepted -> dashboard totalEvents moved, 20 samples): p50 0.62 s,
p95 0.90 s, target MET; drill-down lists it at p95 0.78 s. That run had
branch event-loads merged in (main's sink wrote `events` directly, not
`event_loads`, so the rollups, hence the dashboard, never saw a streamed
event); the read path is the same code.
`--profile` (one reader): a dashboard is 9 queries of 3-15 ms each
(enrollments/completions as of e and of s: 7-16 ms each; the scoped
roles' total_courses 11-13 ms; 1y daily chart 61 ms merging 365 days of
uniqExact states); events drill-down is one `events FINAL` query of
118-220 ms (the key (organization, type, day, user, event_id) serves
neither `ORDER BY timestamp` nor a user filter).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "load_tests"))

import analytics_data as data  # noqa: E402
from bench_gateway import BATCH_EVENTS, make_body, run_load  # noqa: E402
from bench_services import bench_services  # noqa: E402
from analytics_readers import TIMEFRAMES, Caller, Failure, callers, endpoints, flat, get, pct, readers, uncached  # noqa: E402
from lms_events.tokens import Role, mint  # noqa: E402

READERS = 8
UNCACHED_REQUESTS = 12  # per reader and endpoint
CACHED_REQUESTS = 25
ALONE_REQUESTS = 6
RAW_REQUESTS = 2
TARGET_P95_MS = 50.0
FRESHNESS_SAMPLES = 20
FRESHNESS_POLL_S = 0.05
FRESHNESS_TARGET_S = 2.0
FRESHNESS_GIVE_UP_S = 15.0
INGEST_CLIENTS = 16
MAX_INGEST_RATE = 70_000  # events/s a phase has bodies for
METRICS = ("total_users", "active_users", "total_courses", "total_enrollments", "completion_rate", "average_score",
           "learning_hours")


async def measure_endpoints(session: aiohttp.ClientSession, base: str, who: dict[str, Caller], until: str) -> list[dict[str, Any]]:
    team = [caller for caller in who.values() for _ in range(READERS // len(who))]
    rows = []
    for name, path in endpoints(until):
        alone = await readers(session, base, [who["subscriber-admin"]], path, ALONE_REQUESTS, cached=False)
        cold = await readers(session, base, team, path, UNCACHED_REQUESTS, cached=False)
        warm = await readers(session, base, team, path, CACHED_REQUESTS, cached=True)
        slowest = max(cold, key=lambda role: pct(cold[role], 95))
        row = {
            "name": name,
            "alone_p50": statistics.median(flat(alone)) * 1000,
            "cold_p50": pct(flat(cold), 50) * 1000, "cold_p95": pct(flat(cold), 95) * 1000,
            "warm_p50": pct(flat(warm), 50) * 1000, "warm_p95": pct(flat(warm), 95) * 1000,
            "slowest": slowest, "slowest_p95": pct(cold[slowest], 95) * 1000,
            "roles_p50": {role: pct(values, 50) * 1000 for role, values in cold.items()},
        }
        rows.append(row)
        print(f"  {name:<34} {row['alone_p50']:7.1f} {row['cold_p50']:8.1f} {row['cold_p95']:8.1f} {row['warm_p50']:7.1f} "
              f"{row['warm_p95']:7.1f}   {row['slowest']:<16} {row['slowest_p95']:7.1f}   "
              f"{'ok' if row['cold_p95'] < TARGET_P95_MS else 'MISSED'}", flush=True)
    return rows


async def profile_endpoints(session: aiohttp.ClientSession, base: str, who: dict[str, Caller], until: str) -> None:
    """One reader at a time, uncached: the chDB queries behind each endpoint, by role."""
    for name, path in endpoints(until):
        print(f"  {name}")
        for caller in who.values():
            await get(session, base + "/bench/profile", caller)
            latencies = flat(await readers(session, base, [caller], path, ALONE_REQUESTS, cached=False))
            _, shapes = await get(session, base + "/bench/profile", caller)
            inside = sum(seconds for _, _, seconds, _ in shapes) / ALONE_REQUESTS * 1000
            print(f"    {caller.role:<16} request p50 {statistics.median(latencies) * 1000:6.1f} ms, inside chDB {inside:6.1f} ms, "
                  f"{sum(n for _, n, _, _ in shapes) / ALONE_REQUESTS:.0f} queries")
            for sql, n, seconds, rows in shapes[:4]:
                print(f"      {seconds / n * 1000:6.1f} ms x{n / ALONE_REQUESTS:.0f} {rows / n:>7,.0f} rows out  {sql[:100]}")


def api_figures(answer: dict[str, Any]) -> dict[str, list[Any]]:
    return {m["metricType"]: [m["value"], m["previousValue"]] for m in answer["metrics"]}


def rounded_raw(figures: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {name: [v if v is None or isinstance(v, int) else round(v, 2) for v in values] for name, values in figures.items()}


async def measure_raw(session: aiohttp.ClientSession, base: str, admin: Caller, until: str) -> list[dict[str, Any]]:
    team = [admin] * READERS
    rows = []
    for timeframe in TIMEFRAMES:
        query = f"timeframe={timeframe}&until={until}"
        _, answer = await get(session, base + uncached(f"/api/v1/dashboard?{query}"), admin)
        _, raw = await get(session, base + f"/bench/raw-dashboard?{query}", admin)
        equal = api_figures(answer) == rounded_raw(raw["figures"]) and answer["summary"]["totalEvents"] == raw["totalEvents"]
        api = flat(await readers(session, base, team, lambda c, n: f"/api/v1/dashboard?{query}", UNCACHED_REQUESTS, cached=False))
        raw_times = flat(await readers(session, base, team, lambda c, n: f"/bench/raw-dashboard?{query}", RAW_REQUESTS, cached=False))
        alone = flat(await readers(session, base, [admin], lambda c, n: f"/bench/raw-dashboard?{query}", 3, cached=False))
        row = {"timeframe": timeframe, "api_p50": pct(api, 50) * 1000, "api_p95": pct(api, 95) * 1000,
               "raw_p50": pct(raw_times, 50) * 1000, "raw_p95": pct(raw_times, 95) * 1000,
               "raw_alone_p50": statistics.median(alone) * 1000, "equal": equal}
        if not equal:
            row["difference"] = {"api": api_figures(answer), "raw": rounded_raw(raw["figures"])}
        rows.append(row)
        print(f"  dashboard {timeframe:<4} rollups p50 {row['api_p50']:7.1f} p95 {row['api_p95']:7.1f} ms | raw p50 "
              f"{row['raw_p50']:8.1f} p95 {row['raw_p95']:8.1f} ms (alone {row['raw_alone_p50']:7.1f}) | "
              f"raw/rollups x{row['raw_p50'] / row['api_p50']:.1f} (p50) | figures equal: {'yes' if equal else 'NO'}", flush=True)
        if not equal:
            print(f"    {row['difference']}")
    return rows


async def background_reads(session: aiohttp.ClientSession, base: str, who: dict[str, Caller], until: str, stop: asyncio.Event) -> list[float]:
    """8 readers cycling through every endpoint, uncached, until stopped."""
    latencies: list[float] = []
    paths = endpoints(until)
    team = [caller for caller in who.values() for _ in range(READERS // len(who))]

    async def reader(index: int, caller: Caller) -> None:
        n = index
        while not stop.is_set():
            _, path = paths[n % len(paths)]
            elapsed, _ = await get(session, base + uncached(path(caller, n)), caller)
            latencies.append(elapsed)
            n += 1

    await asyncio.gather(*(reader(i, caller) for i, caller in enumerate(team)))
    return latencies


async def measure_ingest(session: aiohttp.ClientSession, base: str, key: str, pid: int, who: dict[str, Caller], until: str,
                         seconds: float) -> dict[str, Any]:
    r = random.Random(42)
    now = datetime.now(UTC)
    await run_load(base, key, [make_body(r, now) for _ in range(100)], INGEST_CLIENTS, 1.0, None, pid)  # warm-up
    bodies = [make_body(r, now) for _ in range(2 * int(MAX_INGEST_RATE * seconds / BATCH_EVENTS))]
    alone = await run_load(base, key, bodies[: len(bodies) // 2], INGEST_CLIENTS, seconds, None, pid)
    stop = asyncio.Event()
    reads = asyncio.create_task(background_reads(session, base, who, until, stop))
    beside = await run_load(base, key, bodies[len(bodies) // 2 :], INGEST_CLIENTS, seconds, None, pid)
    stop.set()
    read_latencies = await reads
    return {"alone": alone, "beside": beside, "reads": read_latencies}


def freshness_event(user: str) -> tuple[bytes, str]:
    event_id = str(uuid.uuid4())
    event = {
        "event_id": event_id, "event_type": "game_stage_complete",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "user_id": user, "session_id": f"sess_{uuid.uuid4().hex[:12]}",
        "properties": {"game_id": "G-01542", "stage_id": "G-01542-quiz", "score": 87, "max_score": 100, "passed": True,
                       "duration_ms": 42_000},
    }
    return gzip.compress(orjson.dumps({"batch": [event]})), event_id


async def total_events(session: aiohttp.ClientSession, base: str, caller: Caller, organization: str | None = None) -> int:
    path = "/api/v1/dashboard?timeframe=7d"
    _, answer = await get(session, base + uncached(path), caller)
    return int(answer["summary"]["totalEvents"])


async def measure_freshness(session: aiohttp.ClientSession, base: str, key: str, admin: Caller, ingest_admin: Caller) -> dict[str, Any]:
    # The stream app first loads what the ingest phases left in Kafka.
    started, last, stable = time.monotonic(), -1, 0
    while stable < 3 and time.monotonic() - started < 300:
        count = await total_events(session, base, ingest_admin)
        stable = stable + 1 if count == last and count > 0 else 0
        last = count
        await asyncio.sleep(1.0)
    drained_s = time.monotonic() - started
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
    dashboard: list[float] = []
    drilldown: list[float] = []
    missing = 0
    for _ in range(FRESHNESS_SAMPLES):
        before = await total_events(session, base, admin)
        body, event_id = freshness_event("usr_5")
        since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds").replace("+00:00", "Z")
        async with session.post(f"{base}/v1/batch", data=body, headers=headers) as response:
            answer = orjson.loads(await response.read())
        accepted = time.monotonic()
        if response.status != 200 or answer["totals"]["accepted"] != 1:
            raise Failure(f"freshness event not accepted: {response.status} {answer}")
        seen_dashboard = seen_drilldown = None
        while (seen_dashboard is None or seen_drilldown is None) and time.monotonic() - accepted < FRESHNESS_GIVE_UP_S:
            if seen_dashboard is None and await total_events(session, base, admin) > before:
                seen_dashboard = time.monotonic() - accepted
            if seen_drilldown is None:
                _, page = await get(session, base + uncached(f"/api/v1/events?userId=usr_5&from={since}&limit=1000"), admin)
                if any(item["eventId"] == event_id for item in page["items"]):
                    seen_drilldown = time.monotonic() - accepted
            await asyncio.sleep(FRESHNESS_POLL_S)
        if seen_dashboard is None:
            missing += 1
        else:
            dashboard.append(seen_dashboard)
        if seen_drilldown is not None:
            drilldown.append(seen_drilldown)
        await asyncio.sleep(random.uniform(0.0, 0.5))
    return {"drained_s": drained_s, "ingested": last, "dashboard": dashboard, "drilldown": drilldown, "missing": missing}


async def start_server(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str, str, str, dict[str, Any] | None]:
    process = subprocess.Popen([sys.executable, str(ROOT / "load_tests" / "serve_analytics.py"), *args],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert process.stdout is not None
    generated = None
    while True:
        line = await asyncio.to_thread(process.stdout.readline)
        if not line:
            raise Failure("the server exited before it was ready")
        if line.startswith("GENERATED "):
            generated = orjson.loads(line.split(" ", 1)[1])
        elif line.startswith("READY "):
            _, port, key, ingest_key = line.split()
            return process, f"http://127.0.0.1:{port}", key, ingest_key, generated


def stop_server(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait()


def print_generation(events: int, generated: dict[str, Any], seconds: float) -> None:
    print(f"data: {events:,} events over {data.DAYS} days ending {generated['today']}, {data.USERS:,} users, {data.COURSES:,} courses, "
          f"{data.ENROLLMENTS:,} enrollments, {data.ATTEMPTS:,} attempts, {data.ORGANIZATIONS} organizations (read: {data.BIG_ORG})")
    print(f"generated in {seconds:.1f} s (server start to ready): domain facts {generated['facts_s']:.1f} s, events through "
          f"event_loads {generated['events_s']:.1f} s, OPTIMIZE FINAL {generated['merge_s']:.1f} s")
    for table, (rows, size) in generated["sizes"].items():
        print(f"  {table:<24} {rows:>12,} rows {size / 2**20:9.1f} MiB")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--ingest-seconds", type=float, default=10.0)
    parser.add_argument("--profile", action="store_true",
                        help="only profile: each endpoint's chDB queries, one reader at a time (no other phase)")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the temporary data dir goes (default: the system's temp dir)")
    args = parser.parse_args()
    secret = secrets.token_hex(32)
    who = callers(secret.encode())
    ingest_admin = Caller("subscriber-admin", mint(secret.encode(), sub="adm", role=Role.SUBSCRIBER_ADMIN, organization_id="bench-ingest"), [], [])
    until = date.today().isoformat()
    with tempfile.TemporaryDirectory(prefix="bench-analytics-", dir=args.work_dir) as tmp:
        data_dir = Path(tmp) / "data"
        async with bench_services(Path(tmp)) as services:
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            server_args = ["--data-dir", str(data_dir), "--bootstrap", services.bootstrap, "--redis", services.redis_url,
                           "--jwt-secret", secret]
            print(f"analytics read benchmark: {os.cpu_count()} cores shared by readers, server (gateway + API + chDB), broker and valkey")
            started = time.monotonic()
            process, base, key, ingest_key, generated = await start_server(
                [*server_args, "--generate", str(args.events), *(["--profile"] if args.profile else [])], env)
            assert generated is not None
            print_generation(args.events, generated, time.monotonic() - started)
            until = generated["today"]
            connector = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(connector=connector) as session:
                if args.profile:
                    try:
                        print("\nchDB queries behind each endpoint (1 reader, uncached; time inside chDB a query, queries a request, rows returned, SQL)")
                        await profile_endpoints(session, base, who, until)
                    finally:
                        stop_server(process)
                    return
                try:
                    print(f"\nendpoints ({READERS} concurrent readers, 2 a role; ms; uncached = a cache miss each, "
                          f"{READERS * UNCACHED_REQUESTS} requests; cached {READERS * CACHED_REQUESTS}; alone = 1 subscriber-admin reader, p50)")
                    print(f"  {'endpoint':<34} {'alone':>7} {'unc p50':>8} {'unc p95':>8} {'c p50':>7} {'c p95':>7}   "
                          f"{'slowest role':<16} {'its p95':>7}   target p95 < {TARGET_P95_MS:.0f} ms")
                    rows = await measure_endpoints(session, base, who, until)
                    print("  uncached p50 by role: " + "; ".join(
                        f"{row['name']}: " + ", ".join(f"{role} {value:.0f}" for role, value in row["roles_p50"].items()) for row in rows))
                    print(f"\nrollups vs raw rows (subscriber-admin dashboard, {READERS} readers, uncached)")
                    await measure_raw(session, base, who["subscriber-admin"], until)
                    print(f"\ningest through the gateway ({INGEST_CLIENTS} clients, {BATCH_EVENTS}-event gzip batches, "
                          f"{args.ingest_seconds:.0f} s each), stream worker not running")
                    ingest = await measure_ingest(session, base, ingest_key, process.pid, who, until, args.ingest_seconds)
                    alone, beside = ingest["alone"], ingest["beside"]
                    for name, figures in (("alone", alone), (f"beside {READERS} readers", beside)):
                        print(f"  {name:<20} {figures['events_per_s']:>9,.0f} events/s   p50 {figures['p50_ms']:6.1f} ms   "
                              f"p99 {figures['p99_ms']:6.1f} ms   server CPU {figures['gateway_cpu'] * 100:5.1f} %   "
                              f"({figures['requests']} requests, {figures['errors']} errors)")
                    reads = ingest["reads"]
                    print(f"  ratio beside/alone: x{beside['events_per_s'] / alone['events_per_s']:.2f}; reads meanwhile: {len(reads)} "
                          f"({len(reads) / args.ingest_seconds:.0f}/s), p50 {pct(reads, 50) * 1000:.1f} ms, p95 {pct(reads, 95) * 1000:.1f} ms")
                finally:
                    stop_server(process)
                process, base, key, ingest_key, _ = await start_server([*server_args, "--streams"], env)
                try:
                    fresh = await measure_freshness(session, base, key, who["subscriber-admin"], ingest_admin)
                finally:
                    stop_server(process)
            print(f"\nfreshness (server restarted with the stream app; its backlog of {fresh['ingested']:,} ingested events "
                  f"drained in {fresh['drained_s']:.0f} s; {FRESHNESS_SAMPLES} events posted one at a time)")
            for name, samples in (("dashboard summary.totalEvents moved", fresh["dashboard"]), ("drill-down lists it", fresh["drilldown"])):
                if samples:
                    print(f"  accepted -> {name}: {len(samples)} samples, p50 {pct(samples, 50):.2f} s, p95 {pct(samples, 95):.2f} s, "
                          f"max {max(samples):.2f} s")
            if fresh["missing"]:
                print(f"  {fresh['missing']} events never moved the dashboard within {FRESHNESS_GIVE_UP_S:.0f} s")
            fresh_p95 = pct(fresh["dashboard"], 95) if fresh["dashboard"] and not fresh["missing"] else None
            print(f"  target dashboard p95 < {FRESHNESS_TARGET_S:.0f} s -> "
                  f"{'MET' if fresh_p95 is not None and fresh_p95 < FRESHNESS_TARGET_S else 'NOT MET'}")
            missed = [row["name"] for row in rows if row["cold_p95"] >= TARGET_P95_MS]
            print(f"\ntarget every endpoint p95 < {TARGET_P95_MS:.0f} ms uncached with {READERS} readers: "
                  f"{'MET' if not missed else 'NOT MET: ' + ', '.join(missed)}")
    print(f"command: PYTHONPATH=. python load_tests/bench_analytics.py --events {args.events} --ingest-seconds {args.ingest_seconds:.0f}")

if __name__ == "__main__":
    asyncio.run(main())
