"""Event Model rules at the gateway, one table per rule, against the real pipeline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from ingest.consent import ConsentStore, consent_key, reload_consent
from ingest.sampling import BUCKETS, Sampler, bucket
from ingest.taxonomy import event_types, lookup
from lms_events.clickhouse import ClickHouseStore
from lms_events.topics import USER_EVENTS
from tests.support import Client, Gateway, eventually, new_event, rows_for_org


def _ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat().replace("+00:00", "Z")


def _id_in_bucket(predicate: Any) -> str:
    while True:
        candidate = str(uuid.uuid4())
        if predicate(bucket(candidate)):
            return candidate


# --- validation: one row per rule --------------------------------------------------------

REJECTIONS = [
    # (overrides, field, rule)
    ({"event_id": "12345"}, "event_id", "pattern"),
    ({"event_id": "evt_123"}, "event_id", "pattern"),
    ({"event_type": "made_up_event"}, "event_type", "taxonomy"),
    ({"timestamp": "2026-01-27T14:30:45"}, "timestamp", "format"),
    ({"timestamp": "yesterday"}, "timestamp", "format"),
    # RFC 3339 admits leap seconds; no clock stores one.
    ({"timestamp": "2026-06-30T23:59:60.000Z"}, "timestamp", "format"),
    ({"device_info": {"platform": "phone"}}, "device_info.platform", "enum"),
    ({"privacy_level": "secret"}, "privacy_level", "enum"),
    ({"retention_days": 0}, "retention_days", "minimum"),
    ({"retention_days": 9000}, "retention_days", "maximum"),
    ({"user_id": 42}, "user_id", "type"),
    ({"properties": {"game_id": "G-1542", "stage_id": "G-01542-quiz", "score": 5}}, "properties.game_id", "pattern"),
    ({"properties": {"game_id": "G-01542", "stage_id": "G-01542-quiz", "score": 101}}, "properties.score", "maximum"),
    ({"properties": {"game_id": "G-01542", "stage_id": "G-01542-quiz"}}, "properties", "required"),
    (
        {"properties": {"game_id": "G-01542", "stage_id": "x", "score": 1, "input_mode": "voice"}},
        "properties.input_mode",
        "enum",
    ),
    (
        {"event_type": "concept_mastered", "properties": {"concept_tags": ["a"], "difficulty_level": 11}},
        "properties.difficulty_level",
        "maximum",
    ),
    ({"event_type": "review_scheduled", "properties": {"offset_days": 7}}, "properties", "required"),
    ({"event_type": "user_login", "properties": {"login_method": "magic"}}, "properties.login_method", "enum"),
    ({"event_type": "api_response_time", "properties": {"endpoint": "/x"}}, "properties", "required"),
]


@pytest.mark.parametrize(("overrides", "field", "rule"), REJECTIONS)
async def test_invalid_events_are_rejected_naming_field_and_rule(
    client: Client, overrides: dict[str, Any], field: str, rule: str
) -> None:
    status, body = await client.post_batch([client.event(**overrides), client.event()])
    assert status == 200
    first, second = body["results"]
    assert first["status"] == "rejected"
    assert (field, rule) in {(e["field"], e["rule"]) for e in first["errors"]}, first["errors"]
    assert second["status"] == "accepted", "a bad event must not sink its neighbours"


async def test_event_too_far_in_the_future_is_rejected(client: Client) -> None:
    status, body = await client.post_batch([client.event(timestamp=_ago(hours=-1))])
    assert body["results"][0]["errors"][0]["rule"] == "future"


@pytest.mark.parametrize(
    "event_id", ["evt_1234567890abcdef", "0f8fad5b-d9cb-469f-a165-70867728950e", "EVT_0000000000000000".lower()]
)
async def test_both_event_id_forms_are_accepted(client: Client, event_id: str) -> None:
    status, body = await client.post_batch([client.event(event_id=event_id)])
    assert body["results"][0]["status"] == "accepted"


async def test_other_rfc3339_spellings_are_stored_canonically(client: Client, store: ClickHouseStore) -> None:
    spellings = {
        "2026-01-27t14:30:45.123z": "2026-01-27 14:30:45.123",
        "2026-01-27T15:30:45.123+01:00": "2026-01-27 14:30:45.123",
        "2026-01-27T14:30:45Z": "2026-01-27 14:30:45.000",
        "2026-01-27T14:30:45.123456Z": "2026-01-27 14:30:45.123",
    }
    events = [client.event(timestamp=spelling) for spelling in spellings]
    status, body = await client.post_batch(events)
    assert body["totals"]["accepted"] == len(spellings), body
    rows = await eventually(
        lambda: rows_for_org(store, "events", client.organization_id, "event_id, toString(timestamp) AS ts"),
        lambda r: len(r) == len(spellings),
    )
    stored = {r["event_id"]: r["ts"] for r in rows}
    assert [stored[e["event_id"]] for e in events] == list(spellings.values())


async def test_aliases_are_stored_in_canonical_form_with_category(client: Client, store: ClickHouseStore) -> None:
    spellings = ["gameStageComplete", "GameStageComplete", "game-stage-complete", "game_stage_complete"]
    status, body = await client.post_batch([client.event(event_type=s) for s in spellings])
    assert body["totals"]["accepted"] == 4
    rows = await eventually(
        lambda: rows_for_org(store, "events", client.organization_id, "event_type, event_category"),
        lambda r: len(r) == 4,
    )
    assert {(r["event_type"], r["event_category"]) for r in rows} == {("game_stage_complete", "learning_progress")}


def test_taxonomy_covers_the_seed_categories() -> None:
    categories = {t.category for t in event_types().values()}
    assert categories == {"user_interaction", "learning_progress", "system_performance", "business_intelligence"}
    for name in ("user_login", "game_stage_complete", "target_met", "concept_mastered", "review_scheduled",
                 "page_load_time", "api_response_time", "javascript_error", "subscription_created"):
        assert lookup(name) is not None, name
    assert lookup("pageLoadTime").name == "page_load_time"  # type: ignore[union-attr]


async def test_late_events_are_flagged_not_dropped(client: Client, store: ClickHouseStore) -> None:
    late, fresh = client.event(timestamp=_ago(days=3)), client.event(timestamp=_ago(minutes=1))
    status, body = await client.post_batch([late, fresh])
    assert body["totals"]["accepted"] == 2
    rows = await eventually(
        lambda: rows_for_org(store, "events", client.organization_id, "event_id, is_late, received_at"),
        lambda r: len(r) == 2,
    )
    flags = {r["event_id"]: r["is_late"] for r in rows}
    assert flags == {late["event_id"]: True, fresh["event_id"]: False}
    assert all(r["received_at"].startswith(str(datetime.now(UTC).year)) for r in rows)


# --- dedup ---------------------------------------------------------------------------------


async def test_duplicates_within_a_batch_and_across_requests(client: Client, gateway: Gateway) -> None:
    event = client.event()
    status, body = await client.post_batch([event, event])
    assert [r["status"] for r in body["results"]] == ["accepted", "duplicate"]
    status, body = await client.post_batch([event])
    assert body["results"][0]["status"] == "duplicate"
    assert body["totals"]["duplicate"] == 1

    # Another organization's event with the same id is its own event.
    other = await gateway.client()
    status, body = await other.post_batch([other.event(event_id=event["event_id"])])
    assert body["results"][0]["status"] == "accepted"


async def test_dedup_survives_the_local_cache(client: Client, gateway: Gateway, redis_url: str) -> None:
    """A second gateway process (no local cache) still sees the first one's claims through Redis."""
    from ingest.dedup import Deduplicator, dedup_key
    from ingest.redis_pipe import PipelinedRedis
    import redis.asyncio as aioredis

    event = client.event()
    await client.post_batch([event])
    redis = aioredis.from_url(redis_url)
    pipelined = PipelinedRedis.from_url(redis_url, timeout_s=2.0)
    try:
        fresh = Deduplicator(pipelined, window_s=60, local_entries=10)
        assert await fresh.claim(client.organization_id, [event["event_id"]]) == [False]
        assert 0 < await redis.ttl(dedup_key(client.organization_id, event["event_id"])) <= 86400
    finally:
        await pipelined.aclose()
        await redis.aclose()


async def test_the_gateway_reconnects_when_redis_drops_its_connection(client: Client, redis_url: str) -> None:
    """Events keep being accepted, and claimed in Redis again, after Redis closed the gateway's connection."""
    from ingest.app import CONNECTION_NAME
    from ingest.dedup import dedup_key
    import redis.asyncio as aioredis

    redis = aioredis.from_url(redis_url)
    try:
        status, body = await client.post_batch([client.event()])
        assert body["totals"]["accepted"] == 1
        gateway_connections = [c for c in await redis.client_list() if c["name"] == CONNECTION_NAME]
        assert gateway_connections, "the gateway names its Redis connection"
        for connection in gateway_connections:
            await redis.client_kill_filter(_id=connection["id"])

        async def post_and_check_claim() -> tuple[dict[str, Any], int]:
            event = client.event()
            status, body = await client.post_batch([event])
            assert status == 200
            return body, await redis.exists(dedup_key(client.organization_id, event["event_id"]))

        # The first request after the drop may fall back to the local cache; then Redis has the claims again.
        body, claimed_in_redis = await eventually(post_and_check_claim, lambda result: result[1] == 1)
        assert body["totals"]["accepted"] == 1
    finally:
        await redis.aclose()


async def test_dedup_claims_by_batch_cache_redis_and_organization(redis_url: str) -> None:
    from ingest.dedup import Deduplicator
    from ingest.redis_pipe import PipelinedRedis

    redis = PipelinedRedis.from_url(redis_url, timeout_s=2.0)
    first_org, second_org = f"org-{uuid.uuid4().hex}", f"org-{uuid.uuid4().hex}"
    x, y, z = (str(uuid.uuid4()) for _ in range(3))
    try:
        dedup = Deduplicator(redis, window_s=60, local_entries=100)
        assert await dedup.claim(first_org, [x, y, x]) == [True, True, False], "a repeat in the batch is a duplicate"
        assert await dedup.claim(first_org, [x]) == [False], "answered by the local cache"
        assert await dedup.claim(second_org, [x, x]) == [True, False], "another organization's id is its own"
        other_process = Deduplicator(redis, window_s=60, local_entries=100)
        assert await other_process.claim(first_org, [y, z, z]) == [False, True, False], "Redis is the shared truth"
    finally:
        await redis.aclose()


# --- sampling ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment_rates", "event_type", "expected_share"),
    [
        ({"performance": 0.1, "high_volume": 0.01, "collect_debug": False}, "page_load_time", 0.10),
        ({"performance": 1.0, "high_volume": 0.01, "collect_debug": True}, "page_load_time", 1.0),
        ({"performance": 0.1, "high_volume": 0.01, "collect_debug": False}, "page_view", 0.01),
        ({"performance": 0.1, "high_volume": 0.01, "collect_debug": False}, "game_stage_complete", 1.0),
        ({"performance": 0.1, "high_volume": 0.01, "collect_debug": False}, "javascript_error", 1.0),
        ({"performance": 0.1, "high_volume": 0.01, "collect_debug": False}, "user_login", 1.0),
        ({"performance": 0.1, "high_volume": 0.01, "collect_debug": False}, "debug_log", 0.0),
        ({"performance": 1.0, "high_volume": 0.01, "collect_debug": True}, "debug_log", 1.0),
    ],
)
def test_sampling_rates_follow_the_seed(environment_rates: dict[str, Any], event_type: str, expected_share: float) -> None:
    sampler = Sampler(**environment_rates)
    kind = lookup(event_type)
    assert kind is not None
    ids = [str(uuid.UUID(int=i * 7919 + 13)) for i in range(20_000)]
    share = sum(sampler.keep(kind, i) for i in ids) / len(ids)
    assert abs(share - expected_share) <= max(0.01, expected_share * 0.15), share
    # Deterministic: the same id always gets the same answer.
    assert [sampler.keep(kind, i) for i in ids[:500]] == [sampler.keep(kind, i) for i in ids[:500]]


async def test_sampled_out_events_are_counted(client: Client, store: ClickHouseStore) -> None:
    dropped_id = _id_in_bucket(lambda b: b >= 0.01 * BUCKETS)
    kept_id = _id_in_bucket(lambda b: b < 0.01 * BUCKETS)
    events = [client.event(event_type="page_view", event_id=dropped_id), client.event(event_type="page_view", event_id=kept_id)]
    status, body = await client.post_batch(events)
    assert [r["status"] for r in body["results"]] == ["sampled_out", "accepted"]
    status, body = await client.post_batch([events[0]])
    assert body["results"][0]["status"] == "sampled_out", "a retry is sampled the same way"
    counts = await eventually(
        lambda: store.query(
            "SELECT status, sum(events) AS n FROM intake_outcomes FINAL WHERE organization_id = {org:String} "
            "AND event_type = 'page_view' GROUP BY status ORDER BY status",
            {"org": client.organization_id},
        ),
        lambda rows: {r["status"]: r["n"] for r in rows} == {"accepted": 1, "sampled_out": 2},
    )
    assert counts


# --- privacy -------------------------------------------------------------------------------

RETENTION = [
    # (privacy_level, event_type, requested, stored)
    ("standard", "game_stage_complete", None, 2555),
    ("sensitive", "game_stage_complete", None, 1095),
    ("pii", "game_stage_complete", None, 365),
    ("standard", "page_load_time", None, 365),
    ("standard", "game_stage_complete", 30, 30),
    ("sensitive", "game_stage_complete", 2000, 1095),
]


@pytest.mark.parametrize(("level", "event_type", "requested", "stored"), RETENTION)
async def test_retention_defaults_and_caps(
    client: Client, store: ClickHouseStore, level: str, event_type: str, requested: int | None, stored: int
) -> None:
    properties = {"load_time_ms": 10} if event_type == "page_load_time" else None
    # Recent: an event older than its retention expires at insert (the TTL at work).
    overrides: dict[str, Any] = {"privacy_level": level, "event_type": event_type, "timestamp": _ago(minutes=5)}
    if properties:
        overrides["properties"] = properties
    if requested:
        overrides["retention_days"] = requested
    status, body = await client.post_batch([client.event(**overrides)])
    assert body["totals"]["accepted"] == 1, body
    table = "perf_events" if event_type == "page_load_time" else "events"  # routed by category
    row = await eventually(
        lambda: rows_for_org(store, table, client.organization_id, "retention_days"), lambda r: len(r) == 1
    )
    assert row[0]["retention_days"] == stored


async def test_pii_events_are_anonymized(client: Client, gateway: Gateway, store: ClickHouseStore) -> None:
    pii = client.event(
        privacy_level="pii",
        user_id="usr_real_42",
        properties={"game_id": "G-01542", "stage_id": "G-01542-quiz", "score": 70, "email": "kid@example.org"},
    )
    status, body = await client.post_batch([pii, client.event(privacy_level="pii", user_id="usr_real_42")])
    other = await gateway.client()
    await other.post_batch([other.event(privacy_level="pii", user_id="usr_real_42")])
    rows = await eventually(
        lambda: rows_for_org(store, "events", client.organization_id, "event_id, user_id, session_id, properties, client_ip"),
        lambda r: len(r) == 2,
    )
    other_rows = await eventually(
        lambda: rows_for_org(store, "events", other.organization_id, "user_id"), lambda r: len(r) == 1
    )
    pseudonyms = {r["user_id"] for r in rows}
    assert len(pseudonyms) == 1 and next(iter(pseudonyms)).startswith("anon_"), "stable pseudonym inside an org"
    assert other_rows[0]["user_id"] not in pseudonyms, "no join across organizations"
    stored = next(r for r in rows if r["event_id"] == pii["event_id"])
    assert "usr_real_42" not in str(rows)
    assert "email" not in orjson.loads(stored["properties"]) and orjson.loads(stored["properties"])["score"] == 70
    assert stored["session_id"].startswith("anon_")
    assert stored["client_ip"] == "127.0.0.0", "IP truncated to /24"


async def test_consent_per_category(client: Client, store: ClickHouseStore) -> None:
    async with client.gateway.session.put(
        f"{client.gateway.url}/v1/consent/usr_optout",
        json={"categories": {"user_interaction": False}},
        headers=client.headers,
    ) as response:
        assert response.status == 200
    login = client.event(event_type="user_login", user_id="usr_optout", properties={"login_method": "sso"})
    progress = client.event(user_id="usr_optout")
    someone_else = client.event(event_type="user_login", user_id="usr_other", properties={})
    status, body = await client.post_batch([login, progress, someone_else])
    assert [r["status"] for r in body["results"]] == ["no_consent", "accepted", "accepted"]
    # The durable copy reaches ClickHouse.
    await eventually(
        lambda: store.query(
            "SELECT categories FROM consent_records FINAL WHERE organization_id = {org:String}",
            {"org": client.organization_id},
        ),
        lambda rows: rows == [{"categories": '{"user_interaction":false}'}],
    )


async def test_an_event_refused_for_consent_or_size_stays_unclaimed(client: Client) -> None:
    """Its retry is judged afresh, not called a duplicate of an event that was never stored."""
    consent_url = f"{client.gateway.url}/v1/consent/usr_later"
    async with client.gateway.session.put(
        consent_url, json={"categories": {"user_interaction": False}}, headers=client.headers
    ) as response:
        assert response.status == 200
    login = client.event(event_type="user_login", user_id="usr_later", properties={"login_method": "sso"})
    too_large = client.event()
    too_large["properties"]["pad"] = "x" * 33_000
    status, body = await client.post_batch([login, too_large])
    assert [r["status"] for r in body["results"]] == ["no_consent", "rejected"]

    async with client.gateway.session.put(
        consent_url, json={"categories": {"user_interaction": True}}, headers=client.headers
    ) as response:
        assert response.status == 200
    del too_large["properties"]["pad"]
    status, body = await client.post_batch([login, too_large])
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted"]


async def test_bad_consent_body_is_400_naming_the_field(client: Client) -> None:
    async with client.gateway.session.put(
        f"{client.gateway.url}/v1/consent/u1", json={"categories": {"gaming": True}}, headers=client.headers
    ) as response:
        assert response.status == 400
        assert (await response.json())["field"].startswith("categories")


async def test_children_under_13_without_parental_consent_store_no_pii(client: Client, store: ClickHouseStore) -> None:
    status, body = await client.post(
        "/v1/domain-events",
        {"eventType": "UserCreated", "userId": "usr_kid", "email": "k@example.org", "role": "student",
         "ageBand": "under_13", "parentalConsent": False},
    )
    assert status == 200 and body["totals"]["accepted"] == 1
    event = client.event(
        user_id="usr_kid",
        properties={"game_id": "G-01542", "stage_id": "G-01542-quiz", "score": 90, "name": "Alex Doe"},
    )
    status, body = await client.post_batch([event])
    assert body["results"][0]["status"] == "accepted"
    row = (await eventually(
        lambda: rows_for_org(store, "events", client.organization_id, "user_id, device_info, properties, client_ip"),
        lambda r: len(r) == 1,
    ))[0]
    assert row["client_ip"] == ""
    assert "user_agent" not in orjson.loads(row["device_info"])
    assert "name" not in orjson.loads(row["properties"])
    assert row["user_id"] == "usr_kid", "the opaque platform id stays: it is the school's record key"


async def test_consent_records_reload_into_an_empty_redis(client: Client, store: ClickHouseStore, redis_url: str) -> None:
    from ingest.redis_pipe import PipelinedRedis

    async with client.gateway.session.put(
        f"{client.gateway.url}/v1/consent/usr_reload", json={"age_band": "13_to_17"}, headers=client.headers
    ) as response:
        assert response.status == 200
    await eventually(
        lambda: store.query("SELECT count() AS n FROM consent_records FINAL WHERE user_id = 'usr_reload'"),
        lambda rows: rows[0]["n"] == 1,
    )
    redis = PipelinedRedis.from_url(redis_url, timeout_s=2.0)
    try:
        await redis.execute("DEL", consent_key(client.organization_id, "usr_reload"))
        consent = ConsentStore(redis)
        assert await reload_consent(store, consent) >= 1
        records = await consent.for_users(client.organization_id, {"usr_reload"})
        assert records["usr_reload"].age_band == "13_to_17"  # type: ignore[union-attr]
    finally:
        await redis.aclose()


# --- auth, rate limit, CORS, schemas, domain events -----------------------------------------


@pytest.mark.parametrize(
    ("authorization", "needle"),
    [(None, "missing write key"), ("Bearer nope", "unknown or revoked"), ("Basic abc", "missing write key")],
)
async def test_requests_without_a_valid_key_get_401(gateway: Gateway, authorization: str | None, needle: str) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with gateway.session.post(f"{gateway.url}/v1/batch", json=[new_event()], headers=headers) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert needle in (await response.json())["error"]


async def test_a_production_key_does_not_write_to_a_development_gateway(gateway: Gateway) -> None:
    key = await gateway.key_for("org_prod", environment="production")
    async with gateway.session.post(
        f"{gateway.url}/v1/batch", json=[new_event()], headers={"Authorization": f"Bearer {key}"}
    ) as response:
        assert response.status == 401
        assert "production" in (await response.json())["error"]


async def test_events_without_organization_take_the_keys(client: Client, store: ClickHouseStore) -> None:
    event = client.event()
    del event["organization_id"]
    await client.post_batch([event])
    await eventually(lambda: rows_for_org(store, "events", client.organization_id), lambda r: len(r) == 1)


async def test_rate_limit_gives_429_with_retry_after(settings: Any, store: ClickHouseStore) -> None:
    import aiohttp

    from tests.support import start_gateway

    tight = settings.with_overrides(rate_limit_events_per_s=1.0, rate_limit_burst=5)
    runner, url = await start_gateway(tight, store)
    try:
        async with aiohttp.ClientSession() as session:
            client = await Gateway(url, session, runner.app).client()
            status, _ = await client.post_batch([client.event() for _ in range(5)])
            assert status == 200
            status, body = await client.post_batch([client.event() for _ in range(5)])
            assert status == 429 and "rate limit" in body["error"]
            async with session.post(f"{url}/v1/batch", json=[client.event()], headers=client.headers) as response:
                assert response.status == 429
                assert int(response.headers["Retry-After"]) >= 1
    finally:
        await runner.cleanup()


async def test_rate_limit_leases_take_ahead_but_never_admit_more_than_the_bucket(redis_url: str) -> None:
    import time

    from ingest.ratelimit import KEY_PREFIX, RateLimiter
    from ingest.redis_pipe import PipelinedRedis

    redis = PipelinedRedis.from_url(redis_url, timeout_s=2.0)
    key_id = f"lease-{uuid.uuid4().hex}"
    limiter = RateLimiter(redis, events_per_s=100, burst=1000)  # leases 25 events (0.25 s of rate)
    try:
        assert (await limiter.take(key_id, 10)).allowed
        # The batch's 10 and a lease of 25 came out of the shared bucket in one call ...
        after_first = await redis.execute("HGET", KEY_PREFIX + key_id, "tokens")
        assert 964 <= float(after_first) <= 966
        # ... and the next two batches are served from the lease without touching it.
        assert (await limiter.take(key_id, 10)).allowed and (await limiter.take(key_id, 10)).allowed
        assert await redis.execute("HGET", KEY_PREFIX + key_id, "tokens") == after_first

        started, admitted = time.monotonic(), 30
        while (await limiter.take(key_id, 10)).allowed:
            admitted += 10
        refilled = 100 * (time.monotonic() - started)
        assert 1000 - 10 <= admitted <= 1000 + refilled + 10
    finally:
        await redis.execute("DEL", KEY_PREFIX + key_id)
        await redis.aclose()


async def test_concurrent_batches_of_one_key_take_one_lease(redis_url: str) -> None:
    import asyncio

    from ingest.ratelimit import KEY_PREFIX, RateLimiter
    from ingest.redis_pipe import PipelinedRedis

    redis = PipelinedRedis.from_url(redis_url, timeout_s=2.0)
    key_id = f"lease-{uuid.uuid4().hex}"
    # 16 x 100 events fit the 2,000 burst; 16 leases of 250 on top of them would not.
    limiter = RateLimiter(redis, events_per_s=1000, burst=2000)
    try:
        decisions = await asyncio.gather(*(limiter.take(key_id, 100) for _ in range(16)))
        assert all(d.allowed for d in decisions)
    finally:
        await redis.execute("DEL", KEY_PREFIX + key_id)
        await redis.aclose()


async def test_cors_preflight_and_response_headers(client: Client) -> None:
    gateway = client.gateway
    async with gateway.session.options(
        f"{gateway.url}/v1/batch",
        headers={"Origin": "https://school.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"},
    ) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    async with gateway.session.post(
        f"{gateway.url}/v1/batch", json=[client.event()], headers={**client.headers, "Origin": "https://school.example"}
    ) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_schema_endpoints(gateway: Gateway) -> None:
    async with gateway.session.get(f"{gateway.url}/v1/schemas") as response:
        listing = await response.json()
    assert set(listing["event_types"]) == set(event_types())
    assert listing["envelope"]["required"] == ["event_id", "event_type", "timestamp"]
    async with gateway.session.get(f"{gateway.url}/v1/schemas/gameStageComplete") as response:
        one = await response.json()
    assert one["event_type"] == "game_stage_complete"
    assert one["properties"]["$defs"]["game"]["properties"]["score"]["maximum"] == 100
    async with gateway.session.get(f"{gateway.url}/v1/schemas/nope") as response:
        assert response.status == 404


async def test_domain_events_are_validated_and_produced_to_their_topic(client: Client, bootstrap: str) -> None:
    user_id = f"usr_{uuid.uuid4().hex[:8]}"
    status, body = await client.post(
        "/v1/domain-events",
        [
            {"eventType": "UserCreated", "userId": user_id, "email": "t@example.org", "role": "teacher"},
            {"eventType": "UserEnrolled", "userId": user_id},
            {"eventType": "Unheard", "userId": user_id},
        ],
    )
    assert status == 200
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "rejected"]
    assert body["results"][1]["errors"][0]["rule"] == "required"
    consumer = AIOKafkaConsumer(USER_EVENTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        found: list[dict[str, Any]] = []

        async def poll() -> list[dict[str, Any]]:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(orjson.loads(r.value) for r in records)
            return [e for e in found if e.get("userId") == user_id]

        mine = await eventually(poll, lambda events: len(events) == 1)
    finally:
        await consumer.stop()
    assert mine[0]["eventType"] == "UserCreated" and mine[0]["organizationId"] == client.organization_id


async def test_strangers_get_401_before_any_payload_error(gateway: Gateway) -> None:
    async with gateway.session.post(
        f"{gateway.url}/v1/batch", data=b"{not json", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 401


async def test_a_consent_entry_expiring_while_it_is_read_is_fetched_again(redis_url: str) -> None:
    """The local consent cache once answered `in` and then expired before `[]`: a KeyError, a 500.
    A clock that moves on every reading puts the expiry exactly between the two."""
    from cachetools import TTLCache

    from ingest.redis_pipe import PipelinedRedis

    ticks = iter(range(0, 10**6, 3))
    redis = PipelinedRedis.from_url(redis_url, timeout_s=2.0)
    try:
        consent = ConsentStore(redis)
        consent._local = TTLCache(maxsize=10, ttl=4, timer=lambda: next(ticks))
        org = f"org-{uuid.uuid4().hex}"
        consent._local[consent_key(org, "u1")] = None
        assert await consent.for_users(org, {"u1"}) == {"u1": None}
    finally:
        await redis.aclose()
