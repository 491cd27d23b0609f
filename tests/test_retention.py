"""Retention as the Event Model seed's table says: every status the gateway
answers matches where the event ends, before and after the TTL runs.

One event per privacy level and category, a day inside its retention and
a day past it. Inside: `accepted`, stored, and still there after the TTL
is applied (forced with OPTIMIZE ... FINAL). Past: `expired`, counted in
intake_outcomes, stored nowhere.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import os

import pytest

from lms_events.clickhouse import ClickHouseStore
from lms_events.control import InstanceControl
from lms_events.errors import LmsEventsError
from lms_events.instance import Instance
from lms_events.settings import Settings
from tests.support import Client, Gateway, eventually, rows_for_org, start_gateway

# (privacy level, event type, table it is routed to, the seed's retention in days)
SEED_RETENTION = [
    ("standard", "game_stage_complete", "events", 2555),
    ("sensitive", "game_stage_complete", "events", 1095),
    ("pii", "game_stage_complete", "events", 365),
    ("standard", "page_load_time", "perf_events", 365),
    ("standard", "subscription_created", "bi_events", 2555),
]
PROPERTIES = {
    "game_stage_complete": {"game_id": "G-01542", "stage_id": "G-01542-quiz", "score": 87},
    "page_load_time": {"load_time_ms": 120},
    "subscription_created": {"plan": "school", "seats": 30},
}


def _days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _event(client: Client, level: str, event_type: str, age_days: float) -> dict[str, Any]:
    return client.event(
        privacy_level=level, event_type=event_type, timestamp=_days_ago(age_days), properties=PROPERTIES[event_type]
    )


@pytest.mark.parametrize(("level", "event_type", "table", "days"), SEED_RETENTION)
async def test_each_event_is_kept_exactly_as_long_as_the_seed_says(
    client: Client, store: ClickHouseStore, level: str, event_type: str, table: str, days: int
) -> None:
    inside, past = _event(client, level, event_type, days - 1), _event(client, level, event_type, days + 1)
    status, answer = await client.post_batch([inside, past])
    assert status == 200, answer
    assert [r["status"] for r in answer["results"]] == ["accepted", "expired"], answer
    assert answer["totals"]["expired"] == 1

    rows = await eventually(lambda: rows_for_org(store, table, client.organization_id, "event_id, retention_days"), lambda r: len(r) == 1)
    assert rows == [{"event_id": inside["event_id"], "retention_days": days}]
    await store.execute(f"OPTIMIZE TABLE {table} FINAL")  # applies the TTL now, as a merge would
    assert await rows_for_org(store, table, client.organization_id, "event_id") == [{"event_id": inside["event_id"]}]

    outcomes = await eventually(
        lambda: store.query(
            "SELECT status, sum(events) AS n FROM intake_outcomes FINAL WHERE organization_id = {org:String} GROUP BY status ORDER BY status",
            {"org": client.organization_id},
        ),
        lambda r: len(r) == 2,
    )
    assert {row["status"]: int(row["n"]) for row in outcomes} == {"accepted": 1, "expired": 1}


async def test_an_organization_keeps_less_and_stored_rows_follow(
    client: Client, gateway: Gateway, store: ClickHouseStore, settings: Settings, bootstrap: str
) -> None:
    org = client.organization_id
    young, old = _event(client, "standard", "game_stage_complete", 20), _event(client, "standard", "game_stage_complete", 40)
    status, answer = await client.post_batch([young, old])
    assert answer["totals"]["accepted"] == 2
    await eventually(lambda: rows_for_org(store, "events", org, "event_id"), lambda rows: len(rows) == 2)

    # Through the admin API of a running instance, as `lms-events retention set` does while `up` runs.
    token = "retention-test-token"
    runner, url = await start_gateway(settings, store, admin_token=token)
    try:
        control = InstanceControl(Instance(os.getpid(), url, bootstrap, settings.redis_url or "", token))
        with pytest.raises(LmsEventsError, match="1 to 2555 days"):
            await control.set_retention(org, {"standard": 3000}, {})
        with pytest.raises(LmsEventsError, match="unknown privacy level"):
            await control.set_retention(org, {"secret": 10}, {})
        assert await control.set_retention(org, {"standard": 30}, {}) == {
            "organization_id": org, "by_privacy_level": {"standard": 30}, "by_category": {},
        }  # fmt: skip
        assert (await control.show_retention(org))["by_privacy_level"] == {"standard": 30}
    finally:
        await runner.cleanup()

    # Stored rows: shortened, and the one now past its retention is gone at once.
    assert await rows_for_org(store, "events", org, "event_id, retention_days") == [
        {"event_id": young["event_id"], "retention_days": 30}
    ]
    # New events: the gateway reloads the policy within LMS_EVENTS_KEYS_REFRESH_S.
    async def status_of_a_35_day_old_event() -> str:
        _, answer = await client.post_batch([_event(client, "standard", "game_stage_complete", 35)])
        return answer["results"][0]["status"]

    await eventually(status_of_a_35_day_old_event, lambda status: status == "expired", timeout=15)
    neighbour = await gateway.client()  # other organizations keep the seed's retention
    _, answer = await neighbour.post_batch([_event(neighbour, "standard", "game_stage_complete", 35)])
    assert answer["results"][0]["status"] == "accepted"
    trail = await store.query(
        "SELECT action FROM audit_log WHERE organization_id = {org:String} AND action = 'retention.change'", {"org": org}
    )
    assert len(trail) == 1
