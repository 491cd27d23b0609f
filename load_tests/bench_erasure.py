"""Erasure of one learner over the analytics benchmark's data set
(load_tests/analytics_data.py: 5 organizations, 10,000 users, N events),
embedded chDB and a valkey of its own, no stream worker running: the
erasure job of privacy/erasure.py step by step, seconds each.

The data set is generated into a temporary data dir by SQL (as
bench_analytics does), merged (OPTIMIZE FINAL, as a running system's
background merges leave it), then `--erasures` learners of bench-org-0
are erased one after the other. Each learner holds 1/10,000 of the
events on ~100 days, so the rollup recomputation covers ~100 days of
their organization.

    PYTHONPATH=. python load_tests/bench_erasure.py [--events 1000000] [--erasures 3] [--work-dir DIR]

Target (issue 14): an erasure over the 10M-event data set within 5 minutes.
Measured on the 2-core dev machine (shared with other work), 3 learners in
a row: 10M events 8.4, 9.3, 11.3 s (rows 3.3-5.2 s, activity_daily's 100
days 3.0-7.5 s); 1M events 5.6, 6.3, 7.0 s. The step that grows with the
data is the recomputation: it reads the organization's events of the
learner's days (with FINAL), so a learner active on every day of a large
organization costs most; the rows step is a count and a DELETE per table
(events found by the bloom filter on user_id).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from load_tests import analytics_data  # noqa: E402
from load_tests.serve_analytics import ROLLUPS  # noqa: E402

ORG = analytics_data.BIG_ORG


async def _generate(store, total: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    today = datetime.now(UTC).date()
    started = time.monotonic()
    for _, sql, params in analytics_data.fact_statements(today):
        await store.execute(sql, params)
    for _, sql, params in analytics_data.event_statements(today, total):
        await store.execute(sql, params)
    generated = time.monotonic() - started
    for table in ROLLUPS:
        await store.execute(f"OPTIMIZE TABLE {table} FINAL")
    return {"generate_s": round(generated, 1), "merge_s": round(time.monotonic() - started - generated, 1)}


async def _erase(context, user_id: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from privacy import erasure
    from privacy.jobs import JobStore, PrivacyJob

    job = PrivacyJob(organization_id=ORG, kind="erasure", user_id=user_id, requested_by="bench", requester_role="system-admin")
    job.steps_total = len(erasure.STEPS)
    await JobStore(context.store).save(job)
    steps: dict[str, float] = {}
    last = started = time.perf_counter()

    async def progress(step: str) -> None:
        nonlocal last
        now = time.perf_counter()
        steps[step] = round(now - last, 2)
        last = now

    finished = await erasure.erase(context, job, progress)
    steps["forget"] = round(time.perf_counter() - last, 2)
    return {"user": user_id, "total_s": round(time.perf_counter() - started, 2), "steps_s": steps, "rows": finished.counts["rows"],
            "activity_daily": finished.counts["activity_daily"]}  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--erasures", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()

    from redis.asyncio import Redis

    from ingest.privacy import PrivacyFilter, pii_secret
    from lms_events import embedded, tombstones
    from lms_events.clickhouse import ChdbStore
    from lms_events.migrations import migrate
    from lms_events.settings import Settings
    from privacy.context import PrivacyContext

    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        data_dir = Path(tmp)
        valkey = await embedded.start_valkey(embedded.free_port(), data_dir / "valkey")
        redis = Redis.from_url(f"redis://127.0.0.1:{valkey.port}/0")
        settings = Settings(data_dir=data_dir, redis_url=f"redis://127.0.0.1:{valkey.port}/0")
        store = ChdbStore(str(data_dir / "clickhouse"), "lms_events")
        try:
            await migrate(store)
            figures: dict[str, object] = {"events": args.events, **await _generate(store, args.events)}
            secret = pii_secret(None, data_dir)
            context = PrivacyContext(settings, store, redis, PrivacyFilter(secret), tombstones.for_store(store, secret))
            runs = [await _erase(context, f"usr_{u}") for u in range(args.erasures)]
            figures["erasures"] = runs
            print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
            totals = sorted(run["total_s"] for run in runs)  # type: ignore[type-var]
            print(f"erasure of one learner over {args.events:,} events: median {totals[len(totals) // 2]} s (min {totals[0]}, max {totals[-1]})")
        finally:
            await store.close()
            await redis.aclose()
            valkey.stop()


if __name__ == "__main__":
    asyncio.run(main())
