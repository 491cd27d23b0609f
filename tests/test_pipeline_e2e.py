"""An event posted over HTTP reaches ClickHouse through Kafka and the Faust sink."""

from __future__ import annotations

import uuid

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from lms_events.clickhouse import ClickHouseStore
from lms_events.topics import INTAKE_OUTCOMES, RAW_EVENTS
from streams.event_batch import EventBatch
from streams.reference_store import EntityMap
from streams.sink import TableSink
from tests.support import Client, Gateway, SignedCounts, eventually, new_event, rows_for_org, unique_org


async def test_batch_lands_in_clickhouse_with_fields_intact(client: Client, store: ClickHouseStore) -> None:
    org = client.organization_id
    good = [new_event(organization_id=org, session_id=f"s{i}") for i in range(3)]
    bad_platform = new_event(organization_id=org, device_info={"platform": "phone"})
    no_timestamp = new_event(organization_id=org)
    del no_timestamp["timestamp"]

    status, body = await client.post_batch({"batch": [good[0], bad_platform, good[1], no_timestamp, good[2]]})

    assert status == 200
    assert body["totals"] == {"accepted": 3, "rejected": 2, "duplicate": 0, "sampled_out": 0, "no_consent": 0, "expired": 0, "erased": 0}
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted", "rejected", "accepted"]
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3, 4]
    assert body["results"][1]["errors"][0]["field"] == "device_info.platform"
    assert body["results"][1]["errors"][0]["rule"] == "enum"
    assert body["results"][3]["errors"][0]["rule"] == "required"

    stored = await eventually(lambda: rows_for_org(store, "events", org), lambda rows: len(rows) >= 3)
    assert sorted(r["event_id"] for r in stored) == sorted(e["event_id"] for e in good)
    row = next(r for r in stored if r["event_id"] == good[0]["event_id"])
    assert row["event_type"] == "game_stage_complete"
    assert row["timestamp"] == "2026-01-27 14:30:45.123"
    assert row["user_id"] == "usr_12345"
    assert row["session_id"] == "s0"
    assert row["platform"] == "desktop"
    assert row["privacy_level"] == "standard"
    assert row["retention_days"] == 2555
    assert orjson.loads(row["properties"]) == good[0]["properties"]
    assert orjson.loads(row["context"]) == good[0]["context"]
    assert row["event_week"] == "2026-W05"
    assert row["event_month"] == "2026-01"

    rejected = await eventually(lambda: rows_for_org(store, "rejected_events", org), lambda rows: len(rows) >= 2)
    assert sorted(r["event_id"] for r in rejected) == sorted([bad_platform["event_id"], no_timestamp["event_id"]])
    assert {tuple(r["rules"]) for r in rejected} == {("enum",), ("required",)}


async def test_single_event_endpoint(client: Client, store: ClickHouseStore) -> None:
    org = client.organization_id
    event = client.event()
    status, body = await client.post("/v1/events", event)
    assert status == 200
    assert body["results"] == [{"index": 0, "event_id": event["event_id"], "status": "accepted"}]
    await eventually(lambda: rows_for_org(store, "events", org), lambda rows: len(rows) == 1)


async def test_replayed_messages_leave_one_row_per_event(gateway: Gateway, store: ClickHouseStore, bootstrap: str) -> None:
    org = unique_org()
    events = [
        {**new_event(organization_id=org), "retention_days": 2555, "received_at": "2026-01-27T14:30:46.000Z"}
        for _ in range(5)
    ]
    message = orjson.dumps({"events": events})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        # The same message consumed twice, as after a crash between insert and commit.
        await producer.send_and_wait(RAW_EVENTS, message, key=b"replay")
        await producer.send_and_wait(RAW_EVENTS, message, key=b"replay")
        # A marker message after both: once it is loaded, both replays were.
        marker = {**events[0], "event_id": new_event()["event_id"]}
        await producer.send_and_wait(RAW_EVENTS, orjson.dumps({"events": [marker]}), key=b"replay")
    finally:
        await producer.stop()

    stored = await eventually(lambda: rows_for_org(store, "events", org), lambda rows: len(rows) >= 6)
    assert len(stored) == 6
    assert len({r["event_id"] for r in stored}) == 6


async def test_retried_insert_with_same_token_inserts_nothing(store: ClickHouseStore, signed_counts: SignedCounts) -> None:
    org = unique_org()
    # Through event_loads, as every writer of events: the token holds across its view too.
    sink = await TableSink.for_table(store, "event_loads")
    events = EventBatch(1, EntityMap({}))
    events.add([{**new_event(organization_id=org), "retention_days": 365, "received_at": "2026-01-27T14:30:46Z"} for _ in range(4)], "m")
    rows, _ = events.to_arrow()
    await sink.write_arrow(rows, token=f"test-token-{org}")
    await sink.write_arrow(rows, token=f"test-token-{org}")

    without_final = await store.query(
        "SELECT count() AS n FROM events WHERE organization_id = {org:String}", {"org": org}
    )
    assert without_final[0]["n"] == 4
    assert await signed_counts.of(org) == {"": (4, 0)}, "nor does it reach the read models twice"


@pytest.mark.parametrize(
    ("topic", "table"),
    [(RAW_EVENTS, "events"), (INTAKE_OUTCOMES, "intake_outcomes")],
)
async def test_poison_message_goes_to_rejected_and_agent_keeps_going(
    client: Client, store: ClickHouseStore, bootstrap: str, topic: str, table: str
) -> None:
    org = client.organization_id
    marker = f"not json at all {uuid.uuid4().hex}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"\x00" + marker.encode(), key=b"poison")
    finally:
        await producer.stop()
    status, _ = await client.post_batch([client.event()])
    assert status == 200
    # The agent that met the poison message still loads what comes after it.
    await eventually(
        lambda: store.query(f"SELECT count() AS n FROM {table} WHERE organization_id = {{org:String}}", {"org": org}),
        lambda rows: rows[0]["n"] >= 1,
    )
    poison = await eventually(
        lambda: store.query(
            "SELECT event_id, rules, source FROM rejected_events FINAL WHERE raw LIKE {pattern:String}",
            {"pattern": f"%{marker}%"},
        ),
        lambda rows: len(rows) >= 1,
    )
    assert poison[0]["event_id"].startswith(f"kafka:{topic}/")
    assert poison[0]["rules"] == ["decode"]
    assert poison[0]["source"] == "stream"
