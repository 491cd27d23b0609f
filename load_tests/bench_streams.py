"""Stream worker benchmark: events/s through enrich + route + sink, and freshness.

    PYTHONPATH=. python load_tests/bench_streams.py [--events 200000] [--per-message 50]

One worker process (this one): a fresh Tansu broker, chDB in a temp dir,
the Faust stream app with its reference tables loaded (users, courses with
game stages, enrollments), so every event takes the full enrichment path.

1. Throughput: reference data is in ClickHouse (as a previous run left
   it) and a backlog of N events (realistic sub-batches, one Kafka message
   per client batch) is on the broker before the worker starts; the clock
   runs from the first row queryable in ClickHouse to the last, so the
   consumer-group join and reference reload are not counted. Target
   >= 30,000 events/s.
2. Freshness: with the worker running, events are produced at a steady
   rate; for each message, the time from Kafka's acknowledgement (the
   moment the gateway would answer "accepted") until its events are
   queryable, polled every FRESHNESS_POLL_S. Target p95 < 2 s.

Measured 2026-11-22 on the 2-core dev machine with
    PYTHONPATH=. flock /tmp/lms-bench.lock python load_tests/bench_streams.py --events 200000 --per-message 50 --sink-within 0.5
Row by row (one dict per event, enrichment looked up per event, rows ->
Arrow, analytics per row): earlier 12,700-13,400 events/s; three runs on
the day of the columnar change 25,368, 20,659 and 18,732 events/s,
freshness p50 0.69-0.77 s, p95 1.08-1.53 s. Columnar (streams/event_batch.py:
one list per column and one Arrow conversion per batch, timestamps parsed
by Arrow, enrichment once per distinct reference in a batch, analytics
aggregated per batch in Arrow): three runs 36,298, 46,000 and 33,957
events/s, freshness p50 0.71-0.74 s, p95 1.13-1.30 s (a gateway
test run in another worktree overlapped the first). Per-event CPU in isolation (25,000
events, 500 messages, the bench's data): decode 3.9 us, columns 2.6 us,
enrichment 2.8 us, Arrow 2.3 us, route 0.02 us, chDB insert 4.2 us,
analytics 0.3 us; run to run the rate varies by a third on this machine.
2026-12-02, `events` loaded through `event_loads` with signs (one lookup
of the batch's stored events, then the insert), runs alternated with the
code before it: before 35,169, 36,932, 45,796, 56,656 events/s; after
32,759 (an editor busy beside it), 38,223, 44,559, 43,854. Timed inside
the sink: the lookup 3.3 us an event (20-140 ms a 25,000-event batch
against up to 200,000 stored rows), the signing 0.3 us.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from lms_events import embedded
from lms_events.clickhouse import ClickHouseStore, open_store
from lms_events.logs import configure_logging
from lms_events.migrations import migrate
from lms_events.settings import Settings
from lms_events.topics import RAW_EVENTS, ensure_topics
from lms_events.runtime import tune_gc_for_serving
from streams.app import create_stream_app
from streams.reference import EntityId, merge, topic_and_key, updates_from
from streams.reference_store import REFERENCE_TABLE, entity_rows
from streams.sink import TableSink, load_version

USERS = 2_000
COURSES = 40
STAGES_PER_COURSE = 20
EVENT_TYPES = ("game_stage_start", "game_stage_complete", "page_view", "assignment_open", "target_met")
FRESHNESS_RATE_EVENTS_S = 3_000
FRESHNESS_DURATION_S = 10.0
FRESHNESS_POLL_S = 0.05
DEADLINE_S = 300.0


def _reference(org: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for c in range(COURSES):
        contents = [{"gameId": f"G-{c:03d}", "stageId": f"G-{c:03d}-{s}", "contentType": "game"} for s in range(STAGES_PER_COURSE)]
        events.append({"eventType": "CourseCreated", "organizationId": org, "courseId": f"crs_{c}", "contents": contents})
    for u in range(USERS):
        events.append({"eventType": "UserCreated", "organizationId": org, "userId": f"usr_{u}", "role": "student", "departmentId": f"dep_{u % 25}"})
        course = u % COURSES
        events.append({"eventType": "UserEnrolled", "organizationId": org, "userId": f"usr_{u}", "courseId": f"crs_{course}", "classId": f"cls_{course}_{u % 4}", "enrollmentId": f"enr_{u}"})
    return events


def _client_batch(org: str, size: int) -> tuple[bytes, bytes]:
    """One Kafka message as the gateway writes it: a session's sub-batch of accepted events."""
    user = random.randrange(USERS)
    session = f"sess_{uuid.uuid4().hex[:12]}"
    stage = f"G-{user % COURSES:03d}-{random.randrange(STAGES_PER_COURSE)}"
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": random.choice(EVENT_TYPES),
            "timestamp": now,
            "received_at": now,
            "user_id": f"usr_{user}",
            "session_id": session,
            "organization_id": org,
            "device_info": {"user_agent": "Mozilla/5.0", "platform": "desktop", "browser": "chrome", "version": "120.0"},
            "context": {"page_url": "/student/assignment-play", "assignment_id": "asg_789"},
            "properties": {"game_id": stage[:5], "stage_id": stage, "score": random.randrange(101), "max_score": 100, "duration_ms": random.randrange(1, 300_000)},
            "privacy_level": "standard",
            "retention_days": 2555,
        }
        for _ in range(size)
    ]
    return session.encode(), orjson.dumps({"events": events})


async def _count(store: ClickHouseStore, org: str) -> int:
    rows = await store.query("SELECT count() AS n FROM events WHERE organization_id = {o:String}", {"o": org})
    return int(rows[0]["n"])


async def _reference_count(store: ClickHouseStore, org: str) -> int:
    rows = await store.query(
        f"SELECT count() AS n FROM {REFERENCE_TABLE} FINAL WHERE organization_id = {{o:String}} AND kind IN ('user', 'course')",
        {"o": org},
    )
    return int(rows[0]["n"])


async def _wait_until(probe: Any, expected: int, poll_s: float = 0.1) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while await probe() < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reference data not built within {DEADLINE_S}s")
        await asyncio.sleep(poll_s)


async def _wait_for(store: ClickHouseStore, org: str, expected: int, poll_s: float = 0.1) -> tuple[float, float]:
    """(time the first row was queryable, time all were)."""
    deadline = time.monotonic() + DEADLINE_S
    first = None
    while time.monotonic() < deadline:
        n = await _count(store, org)
        now = time.monotonic()
        if n and first is None:
            first = now
        if n >= expected:
            return first or now, now
        await asyncio.sleep(poll_s)
    raise TimeoutError(f"only {await _count(store, org)} of {expected} events arrived within {DEADLINE_S}s")


async def _store_reference(store: ClickHouseStore, org: str) -> None:
    """Reference data as a previous run left it in ClickHouse: the worker loads it at start,
    so the measured backlog is enrichment, not reference building."""
    entities: dict[EntityId, dict[str, Any]] = {}
    for event in _reference(org):
        for update in updates_from(event):
            entities[update.entity] = merge(entities.get(update.entity), update)
    sink = await TableSink.for_table(store, REFERENCE_TABLE)
    await sink.write(entity_rows(entities, load_version()), token=f"bench-reference-{org}")


async def _throughput(producer: AIOKafkaProducer, store: ClickHouseStore, app: Any, total: int, per_message: int) -> float:
    org = f"bench_{uuid.uuid4().hex[:8]}"
    await _store_reference(store, org)
    messages = total // per_message
    futures = []
    for _ in range(messages):
        key, value = _client_batch(org, per_message)
        futures.append(await producer.send(RAW_EVENTS, value, key=key))
    await asyncio.gather(*futures)
    await app.start()
    tune_gc_for_serving()  # as `lms-events up` and `worker` do once started
    first, last = await _wait_for(store, org, messages * per_message)
    return messages * per_message / (last - first) if last > first else float("inf")


def _reference_messages(org: str) -> list[tuple[str, bytes, bytes]]:
    return [(topic, key.encode(), orjson.dumps(event)) for event in _reference(org) for topic, key in [topic_and_key(event)]]


async def _freshness(producer: AIOKafkaProducer, store: ClickHouseStore, per_message: int) -> list[float]:
    # The running worker builds this organization's reference data from domain events first.
    org = f"fresh_{uuid.uuid4().hex[:8]}"
    reference = _reference_messages(org)
    await asyncio.gather(*[await producer.send(t, v, key=k) for t, k, v in reference])
    await _wait_until(lambda: _reference_count(store, org), USERS + COURSES)
    acked: dict[str, float] = {}
    latencies: list[float] = []
    interval = per_message / FRESHNESS_RATE_EVENTS_S

    async def produce_steadily() -> None:
        end = time.monotonic() + FRESHNESS_DURATION_S
        while time.monotonic() < end:
            key, value = _client_batch(org, per_message)
            await producer.send_and_wait(RAW_EVENTS, value, key=key)
            acked[key.decode()] = time.monotonic()
            await asyncio.sleep(interval)

    producing = asyncio.create_task(produce_steadily())
    seen: set[str] = set()
    deadline = time.monotonic() + FRESHNESS_DURATION_S + 60
    while (not producing.done() or len(seen) < len(acked)) and time.monotonic() < deadline:
        rows = await store.query(
            "SELECT DISTINCT session_id FROM events WHERE organization_id = {o:String}", {"o": org}
        )
        now = time.monotonic()
        for row in rows:
            session = row["session_id"]
            if session not in seen and session in acked:
                seen.add(session)
                latencies.append(now - acked[session])
        await asyncio.sleep(FRESHNESS_POLL_S)
    await producing
    return latencies


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def main(total: int, per_message: int, sink_within_s: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        broker = await embedded.start_tansu(embedded.free_port(), Path(tmp) / "tansu.log")
        settings = Settings(
            kafka_bootstrap_servers=f"127.0.0.1:{broker.port}", data_dir=Path(tmp), log_level="warning",
            sink_batch_within_s=sink_within_s,
        )
        configure_logging(settings)
        store = await open_store(settings)
        await migrate(store)
        await ensure_topics(settings, settings.kafka_bootstrap_servers or "")
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=False, linger_ms=5
        )
        await producer.start()
        app = create_stream_app(settings, store)
        try:
            rate = await _throughput(producer, store, app, total, per_message)
            latencies = await _freshness(producer, store, per_message)
        finally:
            await producer.stop()
            await app.stop()
            await store.close()
            broker.stop()
    print(
        f"command: PYTHONPATH=. {sys.executable} load_tests/bench_streams.py --events {total} "
        f"--per-message {per_message} --sink-within {sink_within_s}"
    )
    print(f"throughput: {rate:,.0f} events/s through enrich+route+sink ({total:,} events, {per_message} per message), target >= 30,000")
    print(
        f"freshness (acked -> queryable, {len(latencies)} messages at {FRESHNESS_RATE_EVENTS_S:,} events/s): "
        f"p50 {_percentile(latencies, 50):.2f} s, p95 {_percentile(latencies, 95):.2f} s, max {max(latencies):.2f} s, target p95 < 2 s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--per-message", type=int, default=50, help="events per Kafka message (client sub-batch)")
    parser.add_argument("--sink-within", type=float, default=Settings().sink_batch_within_s, help="LMS_EVENTS_SINK_BATCH_WITHIN_S")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.per_message, args.sink_within))
