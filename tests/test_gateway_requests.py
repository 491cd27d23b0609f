"""Request-level rules of the gateway: limits, encodings, malformed input, broker outages."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest

from pathlib import Path

import aiohttp

from lms_events import embedded
from lms_events.clickhouse import ClickHouseStore
from lms_events.settings import Settings
from tests.support import Client, Gateway, eventually, start_gateway


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "needle"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "not valid JSON"),
        (b"", {"Content-Type": "application/json"}, 400, "empty"),
        (b'{"batch": []}', {"Content-Type": "application/json"}, 400, "batch is empty"),
        (b'{"events": [{}]}', {"Content-Type": "application/json"}, 400, '{"batch": [...]}'),
        (b'{"batch": 3}', {"Content-Type": "application/json"}, 400, "JSON array"),
        # Too deep for msgspec, whether the batch could be typed or not.
        (b'[{"event_id": 1, "properties": ' + b"[" * 5000 + b"]" * 5000 + b"}]", JSON, 400, "nested too deeply"),
        (b'[{"properties": ' + b"[" * 990 + b"]" * 990 + b"}]", JSON, 400, "nested too deeply"),
        (b"[{}]", {"Content-Type": "application/xml"}, 400, "Content-Type"),
        (b"[{}]", {"Content-Type": "application/json", "Content-Encoding": "br"}, 400, "Content-Encoding"),
        (b"not gzip", {"Content-Type": "application/json", "Content-Encoding": "gzip"}, 400, "gzip"),
        (b"not deflate", {"Content-Type": "application/json", "Content-Encoding": "deflate"}, 400, "deflate"),
        (
            gzip.compress(b'{"batch": [{}]}', mtime=0)[:-12],
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            400,
            "truncated",
        ),
    ],
)
async def test_malformed_requests_get_400_with_reason(
    client: Client, body: bytes, headers: dict[str, str], status: int, needle: str
) -> None:
    code, answer = await client.post("/v1/batch", data=body, headers=headers)
    assert code == status
    assert needle in answer["error"]


async def test_too_many_events_is_413(client: Client) -> None:
    status, body = await client.post_batch([client.event() for _ in range(501)])
    assert status == 413
    assert "limit is 500" in body["error"]


async def test_body_over_1_mib_after_decompression_is_413(client: Client) -> None:
    padding = "x" * 30_000
    events = [client.event(properties={"pad": padding}) for _ in range(40)]  # ~1.2 MiB
    compressed = gzip.compress(orjson.dumps(events))
    assert len(compressed) < 1024 * 1024
    status, body = await client.post(
        "/v1/batch", data=compressed, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert status == 413
    assert "decompressed" in body["error"]


async def test_event_over_32_kib_is_rejected_alone(client: Client) -> None:
    big = client.event()
    big["properties"]["pad"] = "x" * 33_000
    status, body = await client.post_batch([big, client.event()])
    assert status == 200
    assert [r["status"] for r in body["results"]] == ["rejected", "accepted"]
    assert body["results"][0]["errors"][0]["rule"] == "maxSize"


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", _raw_deflate)],
    ids=["gzip", "deflate", "raw-deflate"],
)
async def test_compressed_bodies_are_accepted(client: Client, encoding: str, compress) -> None:  # type: ignore[no-untyped-def]
    raw = orjson.dumps({"batch": [client.event(), client.event()]})
    data = compress(raw)
    status, body = await client.post(
        "/v1/batch", data=data, headers={"Content-Type": "application/json", "Content-Encoding": encoding}
    )
    assert status == 200
    assert body["totals"]["accepted"] == 2


async def test_non_object_events_are_rejected_not_crashing(client: Client) -> None:
    status, body = await client.post_batch([1, "x", None, [], client.event()])
    assert status == 200
    assert [r["status"] for r in body["results"]] == ["rejected"] * 4 + ["accepted"]


@pytest.mark.parametrize("broker_at_start", [True, False], ids=["broker_lost", "gateway_first"])
async def test_broker_down_gives_503_and_recovers(
    settings: Settings, store: ClickHouseStore, tmp_path: Path, broker_at_start: bool
) -> None:
    port = embedded.free_port()
    broker = await embedded.start_tansu(port, tmp_path / "tansu.log") if broker_at_start else None
    own = settings.with_overrides(kafka_bootstrap_servers=f"127.0.0.1:{port}", kafka_publish_timeout_s=2.0)
    runner, url = await start_gateway(own, store)
    try:
        async with aiohttp.ClientSession() as session:
            client = await Gateway(url, session, runner.app).client()
            if broker is not None:
                status, _ = await client.post_batch([client.event()])
                assert status == 200
                broker.stop()

            retried = client.event()
            async with session.post(f"{url}/v1/batch", json=[retried], headers=client.headers) as response:
                assert response.status == 503
                assert response.headers["Retry-After"].isdigit()
                assert "nothing was accepted" in (await response.json())["error"]
            async with session.get(f"{url}/health") as response:
                assert response.status == 503
                assert (await response.json())["components"]["broker"] == "unavailable"

            # librdkafka reconnects by itself; the retry of the refused event is accepted, not called a duplicate.
            broker = await embedded.start_tansu(port, tmp_path / "tansu.log")
            status, body = await eventually(
                lambda: client.post_batch([retried]), lambda result: result[0] == 200, timeout=60
            )
            assert body["results"][0]["status"] == "accepted"
    finally:
        await runner.cleanup()
        if broker is not None:
            broker.stop()


async def test_health_reports_components(gateway: Gateway) -> None:
    async with gateway.session.get(f"{gateway.url}/health") as response:
        assert response.status == 200
        body = await response.json()
    # What the stream app has yet to commit: a count, whatever earlier tests left.
    lag = body.pop("consumer_lag")
    assert isinstance(lag, int) and lag >= 0
    assert body == {"status": "ok", "components": {"broker": "ok", "redis": "ok", "clickhouse": "ok"}}


async def test_a_domain_event_whose_type_is_not_a_string_is_rejected_not_a_500(client: Client) -> None:
    status, answer = await client.post("/v1/domain-events", [{"eventType": ["UserCreated"], "userId": "u"}, {"eventType": {}}])
    assert status == 200
    assert [r["status"] for r in answer["results"]] == ["rejected", "rejected"]
    assert answer["results"][0]["errors"][0]["field"] == "eventType"
