"""Loads into `events` through `event_loads`: the signs, and what a read model counts from them
(sql/0015_event_loads.sql). Replays and duplicates count once; a changed event moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pyarrow as pa

from lms_events.clickhouse import ClickHouseStore
from lms_events.settings import Settings
from streams.event_batch import EventBatch
from streams.event_loads import COMPARED_COLUMNS, KEY_COLUMNS, signed
from streams.reference_store import EntityMap
from tests.support import (
    Client,
    Gateway,
    SignedCounts,
    accepted,
    eventually,
    new_event,
    produce_events,
    rows_for_org,
    start_gateway,
    unique_org,
)


async def _rows_as_inserted(store: ClickHouseStore, organization_id: str) -> int:
    """Rows of `events` before any merge could collapse them: what the loads inserted."""
    rows = await store.query("SELECT count() AS n FROM events WHERE organization_id = {org:String}", {"org": organization_id})
    return int(rows[0]["n"])


def _timed(duration_ms: int) -> dict[str, Any]:
    """Properties of a valid game_stage_complete event lasting `duration_ms`."""
    return {**new_event()["properties"], "duration_ms": duration_ms}


def _total(counts: dict[str, tuple[int, int]]) -> int:
    return sum(events for events, _duration in counts.values())


async def test_a_message_consumed_twice_counts_once(
    stream_app: Any, store: ClickHouseStore, bootstrap: str, signed_counts: SignedCounts
) -> None:
    org = unique_org()
    play = accepted(new_event(organization_id=org, properties={"duration_ms": 1000}))
    await produce_events(bootstrap, [play], key=b"replay")
    await eventually(lambda: rows_for_org(store, "events", org), lambda rows: len(rows) == 1)
    # Consumed again, as after a crash between the insert and the offset commit; a
    # marker behind it in the same partition says when the replay has been loaded.
    marker = accepted(new_event(organization_id=org, properties={"duration_ms": 1}))
    await produce_events(bootstrap, [play], key=b"replay")
    await produce_events(bootstrap, [marker], key=b"replay")

    counts = await eventually(lambda: signed_counts.of(org), lambda counts: _total(counts) >= 2)

    assert counts == {"": (2, 1001)}
    assert len(await rows_for_org(store, "events", org)) == 2
    usage = await store.query("SELECT sum(events) AS n FROM content_usage_daily WHERE organization_id = {o:String}", {"o": org})
    assert usage[0]["n"] == 2, "content-usage's read model (sql/0031) counts the replay once too"
    assert await _rows_as_inserted(store, org) == 2, "the replay is left out, not inserted again"


@asynccontextmanager
async def _gateway_forgetting_after_1s(settings: Settings, store: ClickHouseStore, gateway: Gateway, org: str) -> AsyncIterator[Client]:
    """A client of `org` posting to a gateway process of its own whose dedup window is 1 s."""
    key = await gateway.key_for(org)
    runner, url = await start_gateway(replace(settings, dedup_window_s=1), store)
    try:
        yield Client(Gateway(url, gateway.session, runner.app), org, key)
    finally:
        await runner.cleanup()


async def test_an_event_posted_again_after_the_dedup_window_counts_once(
    stream_app: Any, store: ClickHouseStore, settings: Settings, gateway: Gateway, signed_counts: SignedCounts
) -> None:
    org = unique_org()
    event = new_event(organization_id=org, properties=_timed(500))
    marker = new_event(organization_id=org, properties=_timed(1))
    async with _gateway_forgetting_after_1s(settings, store, gateway, org) as client:
        status, body = await client.post_batch([event])
        assert (status, body["totals"]["accepted"]) == (200, 1)
        first = await eventually(lambda: rows_for_org(store, "events", org, "event_id, received_at"), lambda rows: len(rows) == 1)
    # Another gateway process (the first one's local cache remembers longer than Redis) takes
    # the re-post once Redis has forgotten the id; the marker follows in the same partition.
    async with _gateway_forgetting_after_1s(settings, store, gateway, org) as client:
        await eventually(lambda: client.post_batch([event]), lambda answer: answer[1]["totals"]["accepted"] == 1)
        status, body = await client.post_batch([marker])
        assert (status, body["totals"]["accepted"]) == (200, 1)

    counts = await eventually(lambda: signed_counts.of(org), lambda counts: _total(counts) >= 2)

    assert counts == {"": (2, 501)}
    stored = {row["event_id"]: row["received_at"] for row in await rows_for_org(store, "events", org, "event_id, received_at")}
    assert stored.keys() == {event["event_id"], marker["event_id"]}
    assert stored[event["event_id"]] == first[0]["received_at"], "the first load stays; the re-post is left out"
    assert await _rows_as_inserted(store, org) == 2


async def test_an_event_twice_in_one_batch_counts_once(
    stream_app: Any, store: ClickHouseStore, bootstrap: str, signed_counts: SignedCounts
) -> None:
    org = unique_org()
    play = accepted(new_event(organization_id=org, properties={"duration_ms": 700}))
    other = accepted(new_event(organization_id=org, properties={"duration_ms": 1}))

    await produce_events(bootstrap, [play, other, play])

    counts = await eventually(lambda: signed_counts.of(org), bool)  # one insert: all or nothing
    assert counts == {"": (2, 701)}
    assert await _rows_as_inserted(store, org) == 2


# The signs alone, on Arrow tables (no broker).

def _batch(events: list[dict[str, Any]]) -> pa.Table:
    batch = EventBatch(1, EntityMap({}))
    batch.add([accepted(event) for event in events], "message")
    table, unconvertible = batch.to_arrow()
    assert unconvertible == []
    return table.select([name for name in table.column_names if name in (*KEY_COLUMNS, *COMPARED_COLUMNS, "_version")])


def _stored(rows: pa.Table, **changed: list[Any]) -> pa.Table:
    stored = rows.select([*KEY_COLUMNS, *COMPARED_COLUMNS])
    for name, values in changed.items():
        position = stored.schema.get_field_index(name)
        stored = stored.set_column(position, stored.schema.field(position), pa.array(values, stored.schema.field(position).type))
    return stored


def _signs(loads: pa.Table) -> list[tuple[str, str, int]]:
    return sorted(zip(loads["event_id"].to_pylist(), loads["course_id"].to_pylist(), loads["_sign"].to_pylist()))


def test_new_events_are_plus_one_and_stored_unchanged_ones_are_left_out() -> None:
    rows = _batch([new_event(event_id=f"evt_{i:016x}", properties={"course_id": "crs_1"}) for i in range(3)])

    assert _signs(signed(rows, _stored(rows.slice(0, 0)))) == [(f"evt_{i:016x}", "crs_1", 1) for i in range(3)]
    assert _signs(signed(rows, _stored(rows.slice(1, 1)))) == [("evt_0000000000000000", "crs_1", 1), ("evt_0000000000000002", "crs_1", 1)]


def test_a_changed_event_takes_back_its_stored_values_and_counts_the_new_ones() -> None:
    rows = _batch([new_event(event_id="evt_00000000000000aa", properties={"course_id": "crs_new", "duration_ms": 5})])

    loads = signed(rows, _stored(rows, course_id=[""], duration_ms=[None], enrichment_missing=[["content"]]))

    assert _signs(loads) == [("evt_00000000000000aa", "", -1), ("evt_00000000000000aa", "crs_new", 1)]
    old = loads.filter(pa.compute.equal(loads["_sign"], -1)).to_pylist()[0]
    assert (old["duration_ms"], old["enrichment_missing"]) == (None, ["content"])


def test_an_event_is_its_whole_key_and_counts_once_in_a_batch() -> None:
    event = new_event(event_id="evt_00000000000000bb", properties={"course_id": "crs_1"})
    same_id_other_user = {**event, "user_id": "usr_other"}
    rows = _batch([event, event, same_id_other_user])

    loads = signed(rows, _stored(rows.slice(0, 1)))

    assert loads.num_rows == 1, "the stored event is a replay, twice; the other user's is another event"
    assert (loads["user_id"][0].as_py(), loads["_sign"][0].as_py()) == ("usr_other", 1)
