"""Request-level rules of the gateway: limits, encodings, malformed input, broker outages."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest

from lms_events import embedded
from lms_events.settings import Settings
from tests.support import Gateway, eventually, new_event, start_gateway


@pytest.mark.parametrize(
    ("body", "headers", "status", "needle"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "not valid JSON"),
        (b"", {"Content-Type": "application/json"}, 400, "empty"),
        (b'{"batch": []}', {"Content-Type": "application/json"}, 400, "batch is empty"),
        (b'{"events": [{}]}', {"Content-Type": "application/json"}, 400, '{"batch": [...]}'),
        (b'{"batch": 3}', {"Content-Type": "application/json"}, 400, "JSON array"),
        (b"[{}]", {"Content-Type": "application/xml"}, 400, "Content-Type"),
        (b"[{}]", {"Content-Type": "application/json", "Content-Encoding": "br"}, 400, "Content-Encoding"),
        (b"not gzip", {"Content-Type": "application/json", "Content-Encoding": "gzip"}, 400, "gzip"),
    ],
)
async def test_malformed_requests_get_400_with_reason(
    gateway: Gateway, body: bytes, headers: dict[str, str], status: int, needle: str
) -> None:
    async with gateway.session.post(f"{gateway.url}/v1/batch", data=body, headers=headers) as response:
        assert response.status == status
        assert needle in (await response.json())["error"]


async def test_too_many_events_is_413(gateway: Gateway) -> None:
    status, body = await gateway.post_batch([new_event() for _ in range(501)])
    assert status == 413
    assert "limit is 500" in body["error"]


async def test_body_over_1_mib_after_decompression_is_413(gateway: Gateway) -> None:
    padding = "x" * 30_000
    events = [new_event(properties={"pad": padding}) for _ in range(40)]  # ~1.2 MiB
    compressed = gzip.compress(orjson.dumps(events))
    assert len(compressed) < 1024 * 1024
    async with gateway.session.post(
        f"{gateway.url}/v1/batch",
        data=compressed,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    ) as response:
        assert response.status == 413
        assert "decompressed" in (await response.json())["error"]


async def test_event_over_32_kib_is_rejected_alone(gateway: Gateway) -> None:
    big = new_event(properties={"pad": "x" * 33_000})
    status, body = await gateway.post_batch([big, new_event()])
    assert status == 200
    assert [r["status"] for r in body["results"]] == ["rejected", "accepted"]
    assert body["results"][0]["errors"][0]["rule"] == "maxSize"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_bodies_are_accepted(gateway: Gateway, encoding: str) -> None:
    raw = orjson.dumps({"batch": [new_event(), new_event()]})
    data = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    async with gateway.session.post(
        f"{gateway.url}/v1/batch", data=data, headers={"Content-Type": "application/json", "Content-Encoding": encoding}
    ) as response:
        assert response.status == 200
        assert (await response.json())["totals"]["accepted"] == 2


async def test_non_object_events_are_rejected_not_crashing(gateway: Gateway) -> None:
    status, body = await gateway.post_batch([1, "x", None, [], new_event()])
    assert status == 200
    assert [r["status"] for r in body["results"]] == ["rejected"] * 4 + ["accepted"]


async def test_broker_down_gives_503_and_recovers(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = embedded.free_port()
    broker = await embedded.start_tansu(port, tmp_path / "tansu.log")
    own = settings.with_overrides(kafka_bootstrap_servers=f"127.0.0.1:{port}", kafka_publish_timeout_s=2.0)
    runner, url = await start_gateway(own)
    import aiohttp

    try:
        async with aiohttp.ClientSession() as session:
            gateway = Gateway(url, session)
            status, _ = await gateway.post_batch([new_event()])
            assert status == 200

            broker.stop()
            async with session.post(f"{url}/v1/batch", json=[new_event()]) as response:
                assert response.status == 503
                assert response.headers["Retry-After"].isdigit()
                assert "nothing was accepted" in (await response.json())["error"]
            async with session.get(f"{url}/health") as response:
                assert response.status == 503
                assert (await response.json())["components"]["broker"] == "unavailable"

            broker = await embedded.start_tansu(port, tmp_path / "tansu.log")
            await eventually(lambda: gateway.post_batch([new_event()]), lambda result: result[0] == 200, timeout=60)
    finally:
        await runner.cleanup()
        broker.stop()


async def test_health_reports_components(gateway: Gateway) -> None:
    async with gateway.session.get(f"{gateway.url}/health") as response:
        assert response.status == 200
        assert await response.json() == {
            "status": "ok",
            "components": {"broker": "ok", "redis": "ok", "clickhouse": "ok"},
        }
