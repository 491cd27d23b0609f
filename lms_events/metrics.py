"""Prometheus metrics of every role, and the `GET /metrics` handler that exposes them.

One registry a process: under `up` the gateway, the stream app, the
analytics API and the report worker share it and one /metrics; the
separate roles expose theirs (`gateway`, `api` on their port, `worker`
and `reports` on LMS_EVENTS_METRICS_PORT).

Every label takes values from a closed set, so a client cannot grow the
number of series: event types from the taxonomy (an unknown one is
`(unknown)`), statuses from the gateway's fixed set (answers.py), routes as their template
(`/api/v1/users/{userId}/analytics`, never the raw path), tables, topics
and report priorities from the code and `schemas/`.

The hot path counts once per request, not per event: the gateway already
tallies a request's events per (type, status), and each distinct pair is
one `inc`. Label children are looked up once and kept (`Children`).

Values that cost I/O to know (consumer lag, report queue depth) are read
when /metrics is scraped, by the probes an application registers
(`add_probe`), each bounded by PROBE_TIMEOUT_S; a probe that fails leaves
its gauge as it was and counts in `lms_events_metrics_probe_failures_total`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

log = structlog.get_logger(__name__)

METRICS_PATH = "/metrics"
PROBE_TIMEOUT_S = 2.0
NAMESPACE = "lms_events"

# Seconds: from a millisecond (a cached answer) to the 5 s publish timeout and past it.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Rows of one sink insert: a micro-batch holds up to 500 messages of up to 500 events.
BATCH_ROWS_BUCKETS = (1, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000, 250_000)
# Seconds from the gateway's 200 to the row being in ClickHouse.
FRESHNESS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)

INTAKE_EVENTS = Counter(
    "events", "Events the gateway decided, by event type (taxonomy; `(unknown)` when invalid) and status",
    ["event_type", "status"], namespace=NAMESPACE, subsystem="intake",
)
DOMAIN_EVENTS = Counter(
    "domain_events", "Domain events the gateway decided, by status (accepted, rejected)",
    ["status"], namespace=NAMESPACE, subsystem="intake",
)
HTTP_REQUESTS = Histogram(
    "request_duration_seconds", "HTTP requests by method, route template and status code",
    ["method", "route", "status"], namespace=NAMESPACE, subsystem="http", buckets=LATENCY_BUCKETS,
)
KAFKA_PUBLISH = Histogram(
    "publish_duration_seconds",
    "From handing a request's messages to Kafka until acks=all (and the spool's write, under `up`), by outcome",
    ["outcome"], namespace=NAMESPACE, subsystem="kafka", buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "consumer_lag_messages",
    "Messages of a pipeline topic the stream app has not committed (end offset - committed offset; read at scrape)",
    ["topic"], namespace=NAMESPACE, subsystem="kafka",
)
SINK_BATCH_ROWS = Histogram(
    "batch_rows", "Rows of one sink insert into ClickHouse, by table",
    ["table"], namespace=NAMESPACE, subsystem="sink", buckets=BATCH_ROWS_BUCKETS,
)
SINK_INSERT = Histogram(
    "insert_duration_seconds", "One sink insert into ClickHouse (with its retries), by table",
    ["table"], namespace=NAMESPACE, subsystem="sink", buckets=LATENCY_BUCKETS,
)
SINK_LAST_SUCCESS = Gauge(
    "last_success_timestamp_seconds", "When a sink last stored a batch (Unix time)",
    namespace=NAMESPACE, subsystem="sink",
)
FRESHNESS = Histogram(
    "accepted_to_stored_seconds",
    "Per stored batch of events: seconds from the gateway accepting its oldest event to the batch being in ClickHouse",
    namespace=NAMESPACE, subsystem="sink", buckets=FRESHNESS_BUCKETS,
)
CACHE_REQUESTS = Counter(
    "cache_requests", "Cacheable analytics answers by route and result (hit, miss; bypass when caching is off)",
    ["route", "result"], namespace=NAMESPACE, subsystem="analytics",
)
REPORT_QUEUE = Gauge(
    "queue_messages", "Report jobs waiting: one stream per priority, and `delayed` (retries, scheduled; read at scrape)",
    ["queue"], namespace=NAMESPACE, subsystem="reports",
)
REPORT_JOBS = Counter(
    "job_transitions", "Report job status changes made here, by the status reached",
    ["status"], namespace=NAMESPACE, subsystem="reports",
)
# Under `up`: what its supervision did (lms_events/supervision.py, lms_events/generations.py).
SUPERVISION = Counter(
    "actions", "`up` restarting a server or the stream worker, by what (broker, valkey, stream_worker) and why",
    ["component", "reason"], namespace=NAMESPACE, subsystem="supervision",
)
GENERATIONS = Counter(
    "changes", "The embedded broker's topic generations opened and deleted",
    ["change"], namespace=NAMESPACE, subsystem="topic_generations",
)
PROBE_FAILURES = Counter(
    "probe_failures", "Scrape-time probes that failed or timed out, by probe",
    ["probe"], namespace=NAMESPACE, subsystem="metrics",
)

class Children:
    """A metric's label children by label values, looked up in the registry once each:
    `labels()` takes a lock and validates every time, this is one dict lookup."""

    __slots__ = ("_metric", "_children")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


intake_events = Children(INTAKE_EVENTS)
http_requests = Children(HTTP_REQUESTS)
sink_rows = Children(SINK_BATCH_ROWS)
sink_seconds = Children(SINK_INSERT)


def count_intake(counts: dict[tuple[str, str], int]) -> None:
    """A request's events, already tallied per (event type, status)."""
    for labels, count in counts.items():
        intake_events(*labels).inc(count)


def sink_stored(table: str, rows: int, seconds: float, at: float) -> None:
    sink_rows(table).observe(rows)
    sink_seconds(table).observe(seconds)
    SINK_LAST_SUCCESS.set(at)


Probe = Callable[[], Awaitable[None]]
PROBES = web.AppKey("metrics_probes", list)


def add_probe(app: web.Application, name: str, probe: Probe) -> None:
    """Run `probe` (it sets gauges) before each scrape of this app's /metrics. Call it
    while wiring the app (before it starts); the probe may use resources it acquires later."""
    if PROBES not in app:
        app[PROBES] = []
    app[PROBES].append((name, probe))


async def _run_probe(name: str, probe: Probe) -> None:
    try:
        await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - a scrape must answer whatever a probe hit
        PROBE_FAILURES.labels(name).inc()
        log.warning("metrics_probe_failed", probe=name, error_type=type(exc).__name__)


async def get_metrics(request: web.Request) -> web.Response:
    await asyncio.gather(*(_run_probe(name, probe) for name, probe in request.app.get(PROBES, ())))
    # generate_latest walks every series: off the loop, so a scrape never stalls requests.
    body = await asyncio.to_thread(generate_latest, REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_metrics(app: web.Application) -> None:
    """`GET /metrics` on `app` (once: `up` wires several stages into one app)."""
    if not any(getattr(r, "canonical", None) == METRICS_PATH for r in app.router.resources()):
        app.router.add_get(METRICS_PATH, get_metrics)


@asynccontextmanager
async def serving(host: str, port: int | None, probes: dict[str, Probe]) -> AsyncIterator[str | None]:
    """/metrics on its own port, for the roles without an HTTP server (`worker`, `reports`);
    nothing when `port` is None. Yields the URL it listens on."""
    if port is None:
        yield None
        return
    app = web.Application()
    add_metrics(app)
    for name, probe in probes.items():
        add_probe(app, name, probe)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    url = f"http://{bound_host}:{bound_port}{METRICS_PATH}"
    log.info("metrics_serving", url=url)
    try:
        yield url
    finally:
        await runner.cleanup()
