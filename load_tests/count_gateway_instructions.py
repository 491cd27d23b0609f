"""Gateway CPU per event as a count of instructions: a figure that does not move with the host.

    python load_tests/count_gateway_instructions.py [--spool]       (needs valgrind)

Throughput on this shared 2-core machine varies by +-20 % from run to run
with the same code, too much to see a 5 % change. This runs the request
path that the gateway's event-loop thread executes (gunzip, parse, rate
limit, intake with its Redis calls, Kafka publish, response) under
callgrind, twice: once over FEW batches and once over MANY. Everything
else (imports, start-up, warm-up) is the same in both runs, so the
difference divided by the extra events is the loop thread's instructions
per event. Repeat runs of the same code agree within ~0.7 %, so a smaller
change cannot be told from noise. The HTTP server itself is not
in the count; see bench_gateway.py for the wall-clock figures. `--spool`
publishes through the gateway's spool too, as under `up`'s embedded broker.

Measured on the dev machine (realistic 100-event batches of the gateway
benchmark): 155,000 instructions/event at the start of 2026-11-22
(aiokafka producer, per-event dataclasses), 109,200 that afternoon
(librdkafka producer, size check on the stored form, string time checks,
rate-limit leases, consent and stored form in one pass). That evening,
from 111,900 measured afresh: 107,300 with fewer calls per event in the
intake; 101,600 with bodies inflated on a worker thread; 95,900 with
consent and dedup on one pipelined Redis connection (ingest/redis_pipe.py);
94,900 with one delivery future per publish; 100,000 with inflating back
on the loop (the worker thread saved the loop instructions but not wall
time: the loop idled waiting for the hand-back); 99,300 with ISA-L
inflating (callgrind counts 700 fewer instructions; timed, a batch's
inflate takes 24 instead of 56 us of CPU); 98,200 with each event decided
in one pass (consent looked up before validation); 94,700 with the
per-(type, status) counts made in C once per batch, the dedup cache keyed
by bare event id, no hash for event types that are never sampled, and
valid events built without NamedTuple's Python constructor (95,350 on a
second run of the same code). Of those 94,700 (measured by replacing one part at a time): parse + schema check +
serialisation + response + produce alone ~57,500; the stored form's extra
fields ~9,000 (dict inserts and the longer JSON, not the privacy logic:
~1,300); the dedup claim ~3,900; the whole consent lookup, Redis round
trip included, ~400.
Late evening: 78,600 with batches decoded typed by msgspec (envelope and
properties checked in C while parsing; sub-objects kept as raw JSON and
copied into the stored form; jsonschema-rs only for what msgspec refuses),
77,300 with device_info/context bytes seen to fit remembered, 77,100 with
other RFC 3339 spellings kept on the typed path, 73,900 with ValidEvent a
msgspec struct (built in C, not tracked by the GC) instead of a
NamedTuple, 72,700 with the canonical-time regex called without a wrapper.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "load_tests"))

from bench_gateway import BATCH_EVENTS, make_body  # noqa: E402
from bench_services import bench_services  # noqa: E402
from lms_events.settings import Settings  # noqa: E402
from lms_events.topics import ensure_topics  # noqa: E402

FEW, MANY = 10, 60
BODIES = 80
WARM_UP = 5


async def request_path(batches: int, bootstrap: str, redis_url: str, spool_dir: Path | None) -> None:
    """What the gateway does for `batches` requests, without the HTTP server."""
    from ingest import body
    from ingest.consent import ConsentStore
    from ingest.dedup import Deduplicator
    from ingest.intake import Caller, Intake
    from ingest.privacy import PrivacyFilter
    from ingest.erased import ErasedUsers
    from ingest.publish import EventPublisher
    from ingest.ratelimit import RateLimiter
    from ingest.redis_pipe import PipelinedRedis
    from ingest.sampling import Sampler
    from ingest.spool import Spool
    from ingest.validation import EventValidator
    from lms_events.runtime import tune_gc_for_serving
    from lms_events.tombstones import Digester
    from lms_events.write_keys import WriteKey

    settings = Settings(environment="development")
    now = datetime.now(UTC)
    random_source = random.Random(7)
    bodies = [make_body(random_source, now) for _ in range(BODIES)]
    redis = PipelinedRedis.from_url(redis_url, timeout_s=2.0)
    intake = Intake(
        validator=EventValidator(
            max_future=timedelta(seconds=settings.max_future_s), late_after=timedelta(seconds=settings.late_after_s)
        ),
        sampler=Sampler.from_settings(settings),
        dedup=Deduplicator(redis, window_s=settings.dedup_window_s, local_entries=settings.dedup_local_entries),
        consent=ConsentStore(redis),
        privacy=PrivacyFilter(b"instruction-count"),
        erased=ErasedUsers(redis, Digester(b"instruction-count")),
    )
    limiter = RateLimiter(redis, events_per_s=10_000_000, burst=10_000_000)
    publisher = EventPublisher(bootstrap, timeout_s=30, spool=Spool.open(spool_dir) if spool_dir else None)
    await publisher.start()
    organization = f"count-{uuid.uuid4().hex[:8]}"
    caller = Caller(WriteKey("k", "", organization, "development", "count", ""), "127.0.0.0", "request")

    async def one_request(compressed: bytes) -> None:
        events = body.events_of_batch(body.decompress(compressed, "gzip"))
        await limiter.take(caller.key.key_id, len(events))
        outcome = await intake.process(events, caller=caller, received_at=now)
        await publisher.publish(outcome.messages)
        orjson.dumps(outcome.as_json())

    for compressed in bodies[-WARM_UP:]:
        await one_request(compressed)
    tune_gc_for_serving()
    for compressed in bodies[:batches]:
        await one_request(compressed)
    await publisher.stop()
    await redis.aclose()


def loop_thread_instructions(batches: int, bootstrap: str, redis_url: str, out_dir: Path, spool: bool) -> int:
    prefix = out_dir / f"callgrind.{batches}"
    spool_dir = ["--spool-dir", str(out_dir / f"spool.{batches}")] if spool else []
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={prefix}.%p",
         sys.executable, __file__, "--inner", str(batches), "--bootstrap", bootstrap, "--redis", redis_url, *spool_dir],
        check=True, capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    main_thread = next(out_dir.glob(f"callgrind.{batches}.*-01"))
    return int(re.search(r"^summary: (\d+)", main_thread.read_text(errors="replace"), re.MULTILINE).group(1))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inner", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--spool-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--spool", action="store_true", help="publish through the spool as well")
    args = parser.parse_args()
    if args.inner is not None:
        await request_path(args.inner, args.bootstrap, args.redis, args.spool_dir)
        return
    with tempfile.TemporaryDirectory() as tmp:
        async with bench_services(Path(tmp)) as services:
            await ensure_topics(Settings(kafka_bootstrap_servers=services.bootstrap, data_dir=Path(tmp)), services.bootstrap)
            few, many = [
                await asyncio.to_thread(
                    loop_thread_instructions, batches, services.bootstrap, services.redis_url, Path(tmp), args.spool
                )
                for batches in (FEW, MANY)
            ]
            per_event = (many - few) / ((MANY - FEW) * BATCH_EVENTS)
            print(f"gateway loop thread{' (with the spool)' if args.spool else ''}: {per_event:,.0f} instructions/event "
                  f"({MANY - FEW} batches of {BATCH_EVENTS} events, callgrind, {FEW} vs {MANY} batches)")

if __name__ == "__main__":
    asyncio.run(main())
