"""`lms-events up`: everything in one process.

It starts what is not configured (Tansu, valkey, chDB), then the stream
app and the gateway in one event loop. A clean stop (Ctrl-C, SIGTERM)
runs the start in reverse with one extra step: after the gateway stops
accepting, wait until the stream app has committed everything Kafka
holds, because the embedded broker keeps messages only in memory. Under
the embedded broker the gateway also spools what it publishes to disk
before answering (ingest/spool.py): `up` replays what a crashed run left
there before it serves, and deletes what ClickHouse has; a broker that
dies is started again and given what the spool holds
(lms_events/supervision.py), and the busy topics rotate through
generations so that the broker's memory stays bounded
(lms_events/generations.py).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Coroutine
from typing import Any
from contextlib import AsyncExitStack

import faust
import structlog
from aiohttp import web
from aiokafka.errors import KafkaError

from analytics.analyst.app import add_query_api
from analytics.app import add_api
from ingest.app import create_app
from ingest.health import StreamWorkerState
from ingest.keys import STREAM_WORKER
from ingest.publish import DELIVERY_GRACE_S, EmbeddedBroker
from lms_events import spooling
from reports.app import add_reports
from lms_events.docs import add_docs
from lms_events.instance import (
    Instance,
    new_admin_token,
    remove_instance,
    write_instance,
)
from lms_events.demo import DEMO_ORGANIZATION, demo_read_token, demo_write_key
from lms_events.drain import wait_until_drained
from lms_events.errors import EmbeddedStartError
from lms_events.generations import Rotation
from lms_events.settings import Settings
from lms_events.supervision import BrokerSupervisor, supervise_stream_worker, supervise_valkey
from streams.app import create_stream_app
from streams.sink import Sinks

from lms_events.runtime import (
    CLEANUP_GRACE_S,
    GATEWAY_SHUTDOWN_TIMEOUT_S,
    SPOOL_CLOSE_TIMEOUT_S,
    STREAMS_STOP_TIMEOUT_S,
    WORKER_START_TIMEOUT_S,
    Pipeline,
    exit_now,
    start_pipeline,
    stop_on_signals,
    tune_gc_for_serving,
    worker_ready,
)

log = structlog.get_logger(__name__)


def _banner(pipeline: Pipeline, gateway_url: str, demo_key: str | None, demo_token: str | None) -> str:
    settings, store = pipeline.settings, pipeline.store
    clickhouse = f"chDB at {settings.chdb_path.resolve()}" if settings.embedded_clickhouse else "ClickHouse server"
    return "\n".join(
        [
            "lms-events is up",
            f"  gateway     {gateway_url}  (POST /v1/batch, POST /v1/events, GET /health)",
            f"  api         {gateway_url}/api/v1  (GET /api/v1/dashboard, ...; docs at {gateway_url}/docs)",
            f"  reports     {gateway_url}/api/v1/report-jobs  "
            f"({'worker in this process' if settings.reports_worker else 'no worker: run `lms-events reports`'})",
            f"  kafka       {settings.kafka_bootstrap_servers}{'  (embedded Tansu)' if pipeline.embedded_kafka else ''}",
            f"  redis       {settings.redis_url}{'  (embedded valkey)' if pipeline.embedded_redis else ''}",
            f"  clickhouse  {clickhouse}, database {store.database}",
            f"  data dir    {settings.data_dir.resolve()}",
            *([f"  write key   {demo_key}  (organization {DEMO_ORGANIZATION}, development)"] if demo_key else []),
            *([f"  read token  {demo_token}  (subscriber-admin of {DEMO_ORGANIZATION}, 24 h)"] if demo_token else []),
            "Ctrl-C or SIGTERM stops it after draining Kafka into ClickHouse.",
        ]
    )


async def _open_spool(pipeline: Pipeline, stack: AsyncExitStack) -> spooling.SpoolKeeper | None:
    """Under the embedded broker: the gateway's spool, with what a crashed run left in it back
    in Kafka. A Kafka cluster is durable itself (acks=all)."""
    if not pipeline.embedded_kafka:
        return None
    settings = pipeline.settings
    assert settings.kafka_bootstrap_servers is not None
    assert pipeline.generations is not None
    keeper = await spooling.SpoolKeeper.open(
        settings.spool_path,
        settings.kafka_bootstrap_servers,
        timeout_s=settings.kafka_publish_timeout_s,
        topic_for=pipeline.generations.topic_for,
    )
    stack.push_async_callback(keeper.close)
    return keeper


class _UpStreams:
    """`up`'s stream worker, which a broker restart replaces by a fresh one: the old one's
    offsets and group membership belong to the dead broker (measured: it could rejoin but
    never commit again, its committed offsets being above the new broker's).

    Each replacement is bounded: the old app gets STREAMS_STOP_TIMEOUT_S to stop (seen in the
    suite: an app whose broker died kept retrying a coordinator the new broker did not know,
    and its stop never returned), then it is left behind and counted; the new one gets
    WORKER_START_TIMEOUT_S to start and WORKER_READY_TIMEOUT_S to join its group, or the
    restart fails with EmbeddedStartError and the supervisor tries again."""

    def __init__(self, pipeline: Pipeline, sinks: Sinks, worker: StreamWorkerState) -> None:
        self._pipeline, self._sinks, self._worker = pipeline, sinks, worker
        self._app: faust.App | None = None
        # Between the first start and the last stop a worker should run.
        self._wanted = False
        # Apps that did not stop in time: their threads keep the interpreter from exiting.
        self.left_behind = 0

    async def start(self) -> None:
        assert self._pipeline.generations is not None
        subscriptions = self._pipeline.generations.subscriptions
        self._wanted = True
        self._app = create_stream_app(
            self._pipeline.settings, self._pipeline.store, self._sinks, subscriptions, self._pipeline.generations.topic_for
        )
        try:
            await asyncio.wait_for(self._app.start(), WORKER_START_TIMEOUT_S)
            await worker_ready(self._app)
        except (TimeoutError, EmbeddedStartError) as exc:
            await self.stop()
            raise EmbeddedStartError(f"the stream worker did not start: {exc!r}") from exc
        self._worker.ready = True
        log.info("stream_worker_ready")

    async def stop(self) -> None:
        self._worker.ready = False
        app, self._app = self._app, None
        if app is None:
            return
        stopping = asyncio.ensure_future(app.stop())
        done, _ = await asyncio.wait({stopping}, timeout=STREAMS_STOP_TIMEOUT_S)
        if not done:
            stopping.cancel()
            self.left_behind += 1
            log.error("stream_worker_left_behind", timeout_s=STREAMS_STOP_TIMEOUT_S, left_behind=self.left_behind)

    async def close(self) -> None:
        """The last stop: nothing restarts it after this."""
        log.info("stopping", step="stream_worker")
        self._wanted = False
        await self.stop()

    async def restart(self) -> None:
        if self._wanted:
            await self.stop()
            await self.start()

    def resubscribe(self) -> None:
        """The topic lists it reads changed (a new or retired topic generation)."""
        if self._app is not None:
            self._app.topics._flag_changes()

    def crashed(self) -> BaseException | None:
        """Why the running app or its fetcher crashed, if one did (it then consumes no more),
        or that none runs when one should (its last start failed)."""
        app = self._app
        if app is None:
            return EmbeddedStartError("no stream worker runs: its last start failed") if self._wanted else None
        # Faust's consumer thread can crash alone (a commit refused mid-rebalance, before the
        # tolerance in streams/rebalances.py): the app and its consumer then look healthy.
        thread = getattr(app.consumer, "_thread", None)
        return (
            app.crash_reason
            or app._fetcher.crash_reason
            or app.consumer.crash_reason
            or getattr(thread, "crash_reason", None)
        )

    def assigned_topics(self) -> set[str] | None:
        app = self._app
        if app is None or not self._worker.ready or app.rebalancing:
            return None
        return {tp.topic for tp in app.consumer.assignment()}


async def run_up(settings: Settings) -> None:
    stop = stop_on_signals()
    async with AsyncExitStack() as stack:
        pipeline = await start_pipeline(settings, stack, with_redis=True)
        settings = pipeline.settings
        keeper = await _open_spool(pipeline, stack)
        sinks = Sinks(pipeline.store)
        worker = StreamWorkerState(last_stored_at=lambda: sinks.last_stored_at)
        streams = _UpStreams(pipeline, sinks, worker)
        generations = pipeline.generations
        assert generations is not None
        watchers: list[asyncio.Task[None]] = []  # cancelled first when `up` stops
        left: list[str] = []  # steps of the stop that could not finish
        broker_view = None
        if pipeline.broker is not None:
            supervisor = BrokerSupervisor(pipeline.broker, settings, keeper, generations, streams.restart)
            watchers.append(asyncio.create_task(supervisor.run()))
            broker_view = EmbeddedBroker(generations.topic_for, lambda: supervisor.down, generations.pipeline_topics)
            rotation = Rotation(
                generations,
                settings,
                streams,
                keeper.spool.topics if keeper else set,
                publish_window_s=settings.kafka_publish_timeout_s + 2 * DELIVERY_GRACE_S,
                broker_down=lambda: supervisor.down,
            )
            watchers.append(asyncio.create_task(rotation.run_forever()))
        if pipeline.valkey is not None:
            watchers.append(asyncio.create_task(supervise_valkey(pipeline.valkey)))
        stopped = (lambda: streams.crashed() or _with_sink_age(keeper.stalled(), sinks)) if keeper else streams.crashed
        watchers.append(asyncio.create_task(supervise_stream_worker(stopped, streams.restart, generations.lock)))
        # Before the gateway loads its keys, so the printed key works at once.
        demo_key = await demo_write_key(settings, pipeline.store) if settings.environment == "development" else None
        demo_token = demo_read_token(settings) if settings.environment == "development" else None
        admin_token = new_admin_token()
        app = create_app(
            settings,
            store=pipeline.store,
            admin_token=admin_token,
            spool=keeper.spool if keeper else None,
            embedded_broker=broker_view,
        )
        app[STREAM_WORKER] = worker
        add_api(app, settings, store=pipeline.store)
        add_query_api(app)
        add_reports(app, settings, store=pipeline.store)  # and its worker, unless LMS_EVENTS_REPORTS_WORKER=false
        add_docs(app)  # last: the document describes every route added before it
        runner = web.AppRunner(
            app,
            shutdown_timeout=GATEWAY_SHUTDOWN_TIMEOUT_S,
            access_log=None,
        )
        await runner.setup()
        site = web.TCPSite(runner, settings.gateway_host, settings.gateway_port)
        await site.start()
        host, port = runner.addresses[0][:2]
        gateway_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        assert settings.kafka_bootstrap_servers is not None and settings.redis_url is not None
        write_instance(
            settings.data_dir,
            Instance(os.getpid(), gateway_url, settings.kafka_bootstrap_servers, settings.redis_url, admin_token),
        )
        stack.callback(remove_instance, settings.data_dir)
        await streams.start()
        stack.push_async_callback(streams.close)
        print(_banner(pipeline, gateway_url, demo_key, demo_token), flush=True)
        tune_gc_for_serving()

        await stop.wait()
        for watcher in watchers:  # nothing is restarted or rotated while `up` stops
            watcher.cancel()
        log.info("stopping", step="gateway")
        # Stops listening and lets in-flight requests finish: after this, every
        # event a client was told is accepted is in Kafka.
        try:
            # Bounded: a resource that hangs while closing must not keep `up` from stopping
            # (seen once under load: the gateway's cleanup outlived a 120 s stop).
            await asyncio.wait_for(runner.cleanup(), GATEWAY_SHUTDOWN_TIMEOUT_S + CLEANUP_GRACE_S)
        except TimeoutError:
            log.error("gateway_cleanup_timed_out", timeout_s=GATEWAY_SHUTDOWN_TIMEOUT_S + CLEANUP_GRACE_S)
        log.info("stopping", step="drain")
        drained = await _drain(pipeline)
        if not drained:
            left.append("drain")
        if keeper is not None:
            await _bounded(keeper.close(drained=drained), SPOOL_CLOSE_TIMEOUT_S, "spool", left)
    if streams.left_behind:
        left.append(f"{streams.left_behind} stream worker(s)")
    log.info("stopped")
    if left:
        # Threads of what was left behind (Faust's consumer thread waiting on a dead broker,
        # a blocking call in an executor) would keep the interpreter from exiting.
        exit_now(f"left behind: {', '.join(left)}", code=0)


def _with_sink_age(stall: spooling.StreamStalled | None, sinks: Sinks) -> spooling.StreamStalled | None:
    """A stall, with when ClickHouse last took rows: recent means only the commits stopped."""
    if stall is None:
        return None
    stored_at = sinks.last_stored_at
    age = f"{time.time() - stored_at:.0f} s ago" if stored_at is not None else "never"
    return spooling.StreamStalled(f"{stall}; the sinks last stored rows {age}")


async def _bounded(work: Coroutine[Any, Any, None], timeout_s: float, step: str, left: list[str]) -> None:
    """A step of the stop that may hang on a dead server: after `timeout_s` it is cancelled
    and left behind (not awaited: what ignores cancellation must not hold the stop); `left`
    gets its name."""
    log.info("stopping", step=step)
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        left.append(step)
        log.error("stop_step_timed_out", step=step, timeout_s=timeout_s)
    elif not task.cancelled() and task.exception() is not None:
        log.error("stop_step_failed", step=step, error=repr(task.exception()))


async def _drain(pipeline: Pipeline) -> bool:
    """Wait until the stream app has stored what Kafka holds. A dead broker cannot be drained:
    what it held stays in the spool for the next start."""
    settings, generations = pipeline.settings, pipeline.generations
    assert settings.kafka_bootstrap_servers is not None and generations is not None
    if pipeline.broker is not None and not pipeline.broker.running:
        log.error("drain_skipped", reason="the broker is down; the spool keeps what it held")
        return False
    try:
        return await wait_until_drained(settings.kafka_bootstrap_servers, topics=generations.pipeline_topics())
    except (KafkaError, OSError) as exc:
        log.error("drain_failed", error=repr(exc))
        return False
