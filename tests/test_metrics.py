"""GET /metrics of the real gateway (with the stream app, API and report worker, as under
`up`): counters move by exactly what was posted, label values stay in closed sets,
routes are templates, and every request has an id its logs and answer carry."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
import structlog
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from ingest.intake import UNKNOWN_TYPE, Status
from ingest.taxonomy import event_types
from lms_events import tokens
from lms_events.clickhouse import ClickHouseStore
from lms_events.request_context import REQUEST_ID_HEADER, request_context
from lms_events.settings import Settings
from lms_events.topics import PIPELINE_TOPICS
from tests.support import Client, Gateway, eventually, serve

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(gateway: Gateway) -> Samples:
    async with gateway.session.get(f"{gateway.url}/metrics") as response:
        assert response.status == 200 and response.content_type == "text/plain"
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def labels_of(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for sample_name, labels in samples if sample_name == name]


INTAKE = "lms_events_intake_events_total"


async def test_event_counters_move_by_exactly_what_was_posted(gateway: Gateway, client: Client) -> None:
    before = await scrape(gateway)
    twice = client.event()
    page_view = client.event(event_type="page_view", properties={"page_url": "/home"})
    batch = [client.event(), client.event(), twice, twice, {**client.event(), "event_type": "no_such_type"}, page_view]
    status, answer = await client.post_batch(batch)
    assert status == 200, answer
    after = await scrape(gateway)

    posted = Counter(
        (event["event_type"] if result["status"] != Status.REJECTED else UNKNOWN_TYPE, result["status"])
        for event, result in zip(batch, answer["results"], strict=True)
    )
    assert posted[("game_stage_complete", Status.ACCEPTED)] == 3 and posted[("game_stage_complete", Status.DUPLICATE)] == 1
    for (event_type, status_), count in posted.items():
        assert delta(before, after, INTAKE, event_type=event_type, status=status_) == count, (event_type, status_)
    moved = sum(delta(before, after, INTAKE, **labels) for labels in labels_of(after, INTAKE))
    assert moved == len(batch)
    # One publish (acks=all) for the request, timed.
    assert delta(before, after, "lms_events_kafka_publish_duration_seconds_count", outcome="acknowledged") == 1
    route = {"method": "POST", "route": "/v1/batch", "status": "200"}
    assert delta(before, after, "lms_events_http_request_duration_seconds_count", **route) == 1


async def test_label_values_come_from_closed_sets(gateway: Gateway, client: Client) -> None:
    """Made-up event types, ids in paths and unknown paths add no label values."""
    made_up = [{**client.event(), "event_type": f"type_{uuid.uuid4().hex}"} for _ in range(20)]
    status, _ = await client.post_batch(made_up)
    assert status == 200
    for name in ("gameStageComplete", "page-view", f"nothing_{uuid.uuid4().hex}"):
        async with gateway.session.get(f"{gateway.url}/v1/schemas/{name}") as response:
            assert response.status in (200, 404)
    async with gateway.session.get(f"{gateway.url}/no/such/{uuid.uuid4().hex}") as response:
        assert response.status == 404
    async with gateway.session.request("PROPFIND", f"{gateway.url}/v1/batch") as response:
        assert response.status == 405

    samples = await scrape(gateway)
    intake = labels_of(samples, INTAKE)
    assert {labels["status"] for labels in intake} <= set(Status.ALL)
    assert {labels["event_type"] for labels in intake} <= {*event_types(), UNKNOWN_TYPE}
    routes = {labels["route"] for labels in labels_of(samples, "lms_events_http_request_duration_seconds_count")}
    assert "/v1/schemas/{event_type}" in routes and "(unmatched)" in routes
    assert not [route for route in routes if "gameStageComplete" in route or "/no/such" in route]
    methods = {labels["method"] for labels in labels_of(samples, "lms_events_http_request_duration_seconds_count")}
    assert "PROPFIND" not in methods and "OTHER" in methods
    assert {labels["topic"] for labels in labels_of(samples, "lms_events_kafka_consumer_lag_messages")} == set(PIPELINE_TOPICS)


async def test_stored_batches_move_the_sink_and_freshness_metrics(gateway: Gateway, client: Client) -> None:
    before = await scrape(gateway)
    status, answer = await client.post_batch([client.event() for _ in range(5)])
    assert status == 200 and answer["totals"]["accepted"] == 5

    def stored(samples: Samples) -> bool:
        return (
            delta(before, samples, "lms_events_sink_accepted_to_stored_seconds_count") >= 1
            and delta(before, samples, "lms_events_sink_batch_rows_sum", table="event_loads") >= 5
        )

    after = await eventually(lambda: scrape(gateway), stored)
    assert delta(before, after, "lms_events_sink_insert_duration_seconds_count", table="event_loads") >= 1
    assert value(after, "lms_events_sink_last_success_timestamp_seconds") >= value(
        before, "lms_events_sink_last_success_timestamp_seconds"
    )
    # Freshness is seconds from the gateway's stamp to the insert: our fresh events' batch took
    # well under a minute (other tests' replays may add slower batches, never negative ones).
    assert delta(before, after, "lms_events_sink_accepted_to_stored_seconds_bucket", le="60.0") >= 1
    assert delta(before, after, "lms_events_sink_accepted_to_stored_seconds_sum") >= 0


async def test_analytics_cache_hits_and_misses_are_counted(gateway: Gateway, client: Client, settings: Settings) -> None:
    token = tokens.mint(tokens.signing_secret(settings), sub="admin", role="subscriber-admin", organization_id=client.organization_id)
    labels = {"route": "/api/v1/dashboard"}
    before = await scrape(gateway)
    for _ in range(2):
        async with gateway.session.get(
            f"{gateway.url}/api/v1/dashboard", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 200
    after = await scrape(gateway)
    assert delta(before, after, "lms_events_analytics_cache_requests_total", **labels, result="miss") == 1
    assert delta(before, after, "lms_events_analytics_cache_requests_total", **labels, result="hit") == 1
    # The report queue is read at scrape: one gauge a priority, and the delayed set.
    queues = {labels["queue"] for labels in labels_of(after, "lms_events_reports_queue_messages")}
    assert "delayed" in queues and len(queues) >= 2


async def test_every_answer_names_its_request_and_its_log_lines_do_too(
    gateway: Gateway, client: Client, store: ClickHouseStore
) -> None:
    status, answer = await client.post_batch([client.event()])
    assert status == 200
    async with gateway.session.post(
        f"{gateway.url}/v1/batch", json=[client.event()], headers={**client.headers, REQUEST_ID_HEADER: "mine"}
    ) as response:
        request_id = response.headers[REQUEST_ID_HEADER]
        assert response.status == 200
    # Ours, never the client's: it keys the request's intake_outcomes rows.
    assert request_id != "mine" and len(request_id) == 32
    rows = await eventually(
        lambda: store.query(
            "SELECT DISTINCT request_id FROM intake_outcomes WHERE organization_id = {org:String} AND request_id = {id:String}",
            {"org": client.organization_id, "id": request_id},
        ),
        bool,
    )
    assert rows == [{"request_id": request_id}]
    async with gateway.session.get(f"{gateway.url}/no/such/path") as response:
        assert len(response.headers[REQUEST_ID_HEADER]) == 32


async def test_log_lines_written_during_a_request_carry_its_id() -> None:
    seen: list[dict[str, Any]] = []

    async def handler(_: web.Request) -> web.Response:
        seen.append(structlog.contextvars.get_contextvars())
        return web.Response(text="ok")

    app = web.Application(middlewares=[request_context])
    app.router.add_get("/health", handler)  # a documented path: serve() builds the OpenAPI document
    runner, url = await serve(app)
    try:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/health") as response:
                answered = response.headers[REQUEST_ID_HEADER]
    finally:
        await runner.cleanup()
    assert seen == [{"request_id": answered}]
    assert "request_id" not in structlog.contextvars.get_contextvars(), "the id outlived its request"


@pytest.mark.parametrize("variable", ["LMS_EVENTS_METRICS_PORT"])
def test_metrics_port_is_a_port(variable: str) -> None:
    from lms_events.errors import ConfigError

    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: "70000"})
    assert Settings.from_env({variable: "9464"}).metrics_port == 9464


async def test_roles_without_http_serve_metrics_on_their_own_port() -> None:
    """`worker` and `reports` (LMS_EVENTS_METRICS_PORT): /metrics with their scrape-time probes;
    a probe that fails is counted and the scrape still answers."""
    import aiohttp

    from lms_events.metrics import REPORT_QUEUE, serving

    async def queue_depth() -> None:
        REPORT_QUEUE.labels("probe-test").set(7)

    async def broken() -> None:
        raise ConnectionError("Redis away")

    async with serving("127.0.0.1", 0, {"queue_depth": queue_depth, "broken": broken}) as url:
        assert url is not None
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                assert response.status == 200
                text = await response.text()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("lms_events_reports_queue_messages", (("queue", "probe-test"),))] == 7
    assert samples[("lms_events_metrics_probe_failures_total", (("probe", "broken"),))] >= 1
    async with serving("127.0.0.1", None, {}) as nothing:
        assert nothing is None


async def test_lag_of_an_unreachable_broker_fails_in_bounded_time_once() -> None:
    """A broker away costs /health and a scrape one bounded read per CACHE_S, not one each."""
    import time

    from lms_events import embedded
    from lms_events.lag import READ_TIMEOUT_S, LagReader

    reader = LagReader(f"127.0.0.1:{embedded.free_port()}")
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raised, kept for the next askers
        await reader.by_topic()
    assert time.monotonic() - started < READ_TIMEOUT_S + 1.0
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017
        await reader.by_topic()
    assert time.monotonic() - started < 0.1
