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

import pytest

from lms_events.clickhouse import ClickHouseStore
from tests.support import Client, eventually, rows_for_org

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
