"""How each role runs: `worker`, `gateway`, `api`, `reports`, `migrate`, what
they share (the pipeline of broker, Redis and ClickHouse; the stop on
signals), and the commands that work on a running product (`reference
load`, `backfill`). `up`, all of them in one process, is lms_events/up.py.

"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import faust
import structlog
from aiohttp import web

from analytics.app import create_api_app
from ingest.app import create_app
from lms_events import embedded, tokens
from reports.app import add_reports, run_worker as run_report_worker
from lms_events.clickhouse import ClickHouseStore, open_store
from lms_events.docs import add_docs
from lms_events.errors import ConfigError, EmbeddedStartError, StorageError
from lms_events import metrics
from lms_events.lag import LagReader
from lms_events.instance import (
    running_instance,
    stream_admin,
)
from lms_events.generations import TopicGenerations
from lms_events.migrations import migrate
from lms_events.settings import EMBEDDED_SESSION_TIMEOUT_S, Settings
from lms_events.topics import ensure_topics
from streams import reference_load
from streams.app import create_stream_app
from streams.backfill import BackfillScope, run_backfill

log = structlog.get_logger(__name__)

WORKER_READY_TIMEOUT_S = 120.0
# Faust's own start (before joining its group; under a second normally): a broker that hangs
# must not hang it. Seen once in the suite: a start beside a left-behind app never returned;
# short enough that the supervisor's next attempt comes within a client's patience.
WORKER_START_TIMEOUT_S = 20.0
WORKER_READY_POLL_S = 0.1
GATEWAY_SHUTDOWN_TIMEOUT_S = 30.0
# What closing the gateway's resources (publisher, caches, report worker, audit flush) may take beyond its requests.
CLEANUP_GRACE_S = 15.0
# What stopping the stream worker may take (a dead broker can keep Faust waiting on it).
STREAMS_STOP_TIMEOUT_S = 10.0
# Closing the spool: the last flush, and the committed offsets that may empty it.
SPOOL_CLOSE_TIMEOUT_S = 15.0
# Past this after SIGTERM/SIGINT `up` exits whatever still runs: each step is bounded, this
# bounds the sum (gateway, drain of a long backlog, stream worker, servers).
STOP_HARD_LIMIT_S = GATEWAY_SHUTDOWN_TIMEOUT_S + CLEANUP_GRACE_S + 120.0 + STREAMS_STOP_TIMEOUT_S + SPOOL_CLOSE_TIMEOUT_S + 25.0


# Gen-0 collections every 50,000 allocations instead of 700: each request
# allocates a few dicts per event, and frequent collections kept re-scanning
# the long-lived graph (schemas, validators, caches).
GC_GEN0_THRESHOLD = 50_000


def tune_gc_for_serving() -> None:
    """Call once everything long-lived exists: moves it out of the collector's
    sight (gc.freeze) and makes young collections rarer. Measured with
    load_tests/bench_gateway.py: p99 at half load 51 ms -> 13 ms, +8 % events/s."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def stop_on_signals() -> asyncio.Event:
    """Set by the first SIGINT/SIGTERM; a second one exits at once (what was answered
    `accepted` is in the spool or ClickHouse already, children die with us)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            exit_now("second signal")
        stop.set()
        watchdog = threading.Timer(STOP_HARD_LIMIT_S, exit_now, args=(f"still stopping after {STOP_HARD_LIMIT_S:.0f}s",))
        watchdog.daemon = True
        watchdog.start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return stop


def exit_now(reason: str, code: int = 1) -> None:
    """Exit at once: what was answered `accepted` is in the spool or ClickHouse already
    (as after a kill -9), and the servers `up` started die with it (PR_SET_PDEATHSIG)."""
    log.warning("exiting_now", reason=reason)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@dataclass
class Pipeline:
    """The resolved settings (servers filled in) and the store this process owns."""

    settings: Settings
    store: ClickHouseStore
    embedded_kafka: bool
    embedded_redis: bool = False
    broker: embedded.ManagedProcess | None = None
    valkey: embedded.ManagedProcess | None = None
    # Topic generations: rotating under the embedded broker only.
    generations: TopicGenerations | None = None


async def start_pipeline(settings: Settings, stack: AsyncExitStack, *, with_redis: bool = False) -> Pipeline:
    """Broker, ClickHouse and (for `up`, whose gateway needs it) Redis: embedded where not configured."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded_kafka = settings.embedded_kafka
    broker = None
    if embedded_kafka:
        port = settings.embedded_kafka_port or embedded.free_port()
        broker = await embedded.start_tansu(port, settings.data_dir / "tansu.log")
        stack.callback(broker.stop)
        settings = settings.with_overrides(
            kafka_bootstrap_servers=f"127.0.0.1:{port}",
            kafka_session_timeout_s=settings.kafka_session_timeout_s or EMBEDDED_SESSION_TIMEOUT_S,
        )
    embedded_redis = with_redis and settings.redis_url is None
    valkey = None
    if with_redis:
        redis_url, valkey = await embedded.resolve_redis(
            settings.redis_url, settings.data_dir, settings.embedded_redis_port
        )
        if valkey is not None:
            stack.callback(valkey.stop)
        settings = settings.with_overrides(redis_url=redis_url)

    store = await open_store(settings)
    stack.push_async_callback(store.close)
    await migrate(store)
    assert settings.kafka_bootstrap_servers is not None
    generations = TopicGenerations(rotating=embedded_kafka)
    await ensure_topics(settings, settings.kafka_bootstrap_servers, generations.all_topics())
    return Pipeline(settings, store, embedded_kafka, embedded_redis, broker, valkey, generations)


async def start_streams(pipeline: Pipeline, stack: AsyncExitStack) -> None:
    stream_app = create_stream_app(pipeline.settings, pipeline.store)
    # Joining the consumer group takes a few seconds; the gateway is already
    # accepting by then and Kafka holds what arrives meanwhile.
    await stream_app.start()
    stack.push_async_callback(stream_app.stop)


async def worker_ready(stream_app: faust.App, timeout_s: float = WORKER_READY_TIMEOUT_S) -> None:
    """Until the worker has partitions of its group and its tables are recovered: from then
    on what is posted gets loaded (the `ready` line and /health wait for this)."""
    deadline = time.monotonic() + timeout_s
    while not (
        stream_app.consumer.assignment() and stream_app.tables.recovery.completed.is_set() and not stream_app.rebalancing
    ):
        if time.monotonic() > deadline:
            raise EmbeddedStartError(f"the stream worker did not join its consumer group within {timeout_s:.0f}s")
        await asyncio.sleep(WORKER_READY_POLL_S)


async def run_worker(settings: Settings) -> None:
    if settings.kafka_bootstrap_servers is None:
        raise ConfigError("KAFKA_BOOTSTRAP_SERVERS", "`lms-events worker` needs a broker; `lms-events up` embeds one")
    stop = stop_on_signals()
    async with AsyncExitStack() as stack:
        await start_streams(await start_pipeline(settings, stack), stack)
        lag = LagReader(settings.kafka_bootstrap_servers)
        await stack.enter_async_context(metrics.serving(settings.gateway_host, settings.metrics_port, {"consumer_lag": lag.probe}))
        log.info("worker_started")
        tune_gc_for_serving()
        await stop.wait()
    log.info("stopped")


def run_gateway(settings: Settings) -> None:
    if settings.kafka_bootstrap_servers is None:
        raise ConfigError("KAFKA_BOOTSTRAP_SERVERS", "`lms-events gateway` needs a broker; `lms-events up` embeds one")
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    app = create_app(settings)
    add_docs(app)

    async def tune_gc(_: web.Application) -> None:
        tune_gc_for_serving()

    app.on_startup.append(tune_gc)
    web.run_app(
        app,
        loop=loop,
        host=settings.gateway_host,
        port=settings.gateway_port,
        shutdown_timeout=GATEWAY_SHUTDOWN_TIMEOUT_S,
        access_log=None,
        print=lambda line: print(line, file=sys.stderr),
    )


def run_api(settings: Settings) -> None:
    """The analytics API alone, against a ClickHouse server (chDB has one owner: `up` serves it there)."""
    if settings.clickhouse_url is None:
        raise ConfigError("CLICKHOUSE_URL", "`lms-events api` reads a ClickHouse server; `lms-events up` serves the API itself")
    web.run_app(
        create_api_app(settings, lambda app: add_reports(app, settings, worker=False)),
        host=settings.gateway_host,
        port=settings.gateway_port,
        access_log=None,
        print=lambda line: print(line, file=sys.stderr),
    )


async def run_reports(settings: Settings) -> None:
    """The report worker alone. With embedded chDB it owns the data dir (run it instead of `up`,
    e.g. to generate queued reports); with CLICKHOUSE_URL run as many as the load needs."""
    if settings.redis_url is None:
        raise ConfigError("REDIS_URL", "`lms-events reports` takes jobs from a Redis queue")
    stop = stop_on_signals()
    async with AsyncExitStack() as stack:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        await migrate(store)
        await run_report_worker(settings, store, stop)
    log.info("stopped")


def mint_token(settings: Settings, *, sub: str, role: str, organization_id: str | None, departments: list[str]) -> str:
    secret = tokens.signing_secret(settings)
    return tokens.mint(secret, sub=sub, role=role, organization_id=organization_id, departments=departments)


async def run_migrate(settings: Settings) -> list[int]:
    store = await open_store(settings)
    try:
        return await migrate(store)
    finally:
        await store.close()



async def run_reference_load(settings: Settings, path: Path) -> int:
    """Send a JSON-lines file of domain events to the broker of the running `up`, else the configured one."""
    messages = reference_load.read_reference_file(path)
    instance = running_instance(settings.data_dir)
    bootstrap = instance.kafka_bootstrap_servers if instance else settings.kafka_bootstrap_servers
    if bootstrap is None:
        raise ConfigError("KAFKA_BOOTSTRAP_SERVERS", "no running `lms-events up` in the data dir and no broker configured")
    return await reference_load.produce(bootstrap, messages)


async def backfill_progress(settings: Settings, scope: BackfillScope) -> AsyncIterator[dict[str, object]]:
    """Run a backfill where ClickHouse is reachable; yields progress dicts.

    With a ClickHouse server, here. With embedded chDB, inside the running
    `up` (it owns the data dir) through its admin API, or here when none runs.
    """
    instance = None if settings.clickhouse_url else running_instance(settings.data_dir)
    if instance is not None:
        async for line in stream_admin(instance, "backfill", scope.as_json()):
            assert isinstance(line, dict)
            if "error" in line:
                raise StorageError(f"backfill in the running instance failed: {line['error']}")
            yield line
        return
    store = await open_store(settings)
    try:
        await migrate(store)
        async for progress in run_backfill(store, scope):
            yield progress.as_json()
    finally:
        await store.close()
