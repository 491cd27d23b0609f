"""The columnar micro-batch: enrichment per event within a shared batch, messages whole or not at all,
routing and analytics over the Arrow table (no broker needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from streams.analytics import AnalyticsCoalescer
from streams.event_batch import EventBatch
from streams.reference import EntityId, Kind
from streams.reference_store import EntityMap
from streams.route import BI_TABLE, EVENTS_TABLE, PERF_TABLE, rows_by_table
from tests.support import accepted, new_event

ORG = "org_batch"
REFERENCE = EntityMap(
    {
        EntityId(Kind.USER, ORG, "usr_known"): {"organization_id": ORG, "department_id": "dep_1", "role": "student"},
        EntityId(Kind.CONTENT, ORG, "stage/stg_1"): {"organization_id": ORG, "course_id": "crs_1", "content_type": "game"},
        EntityId(Kind.ENROLLMENT, ORG, "usr_known/course/crs_1"): {
            "organization_id": ORG, "course_id": "crs_1", "class_id": "cls_1", "enrollment_id": "enr_1",
        },
        EntityId(Kind.USER, "org_other", "usr_elsewhere"): {"organization_id": "org_other", "department_id": "dep_x", "role": "teacher"},
    }
)
ENRICHED = ("course_id", "class_id", "enrollment_id", "department_id", "user_role", "content_type", "score", "duration_ms", "enrichment_missing")


def _event(user_id: str, stage_id: str, **properties: Any) -> dict[str, Any]:
    return accepted(
        new_event(
            organization_id=ORG,
            user_id=user_id,
            properties={"game_id": "G-1", "stage_id": stage_id, "score": 50, "duration_ms": 1000, **properties},
        )
    )


def _mixed() -> list[dict[str, Any]]:
    """Events of known and unknown learners and contents, interleaved, some sharing every reference."""
    return [
        _event("usr_known", "stg_1"),
        _event("usr_unknown", "stg_1"),
        _event("usr_known", "stg_unknown"),
        _event("usr_known", "stg_1", score=90, duration_ms=5),
        _event("usr_elsewhere", "stg_1"),
        _event("usr_known", "stg_1", course_id="crs_sent", content_type="quiz"),
        _event("usr_known", "stg_1", course_id=["not", "an", "id"]),
        _event("usr_unknown", "stg_1"),
    ]


def _rows(batch: EventBatch) -> list[dict[str, Any]]:
    table, unconvertible = batch.to_arrow()
    assert unconvertible == []
    return table.to_pylist()


def test_each_event_of_a_mixed_batch_gets_its_own_enrichment() -> None:
    batch = EventBatch(1, REFERENCE)
    batch.add(_mixed()[:4], "m1")
    batch.add(_mixed()[4:], "m2")
    rows = [{name: row[name] for name in ENRICHED} for row in _rows(batch)]

    known = {"course_id": "crs_1", "class_id": "cls_1", "enrollment_id": "enr_1", "department_id": "dep_1",
             "user_role": "student", "content_type": "game", "score": 50.0, "duration_ms": 1000, "enrichment_missing": []}
    unknown_user = {**known, "class_id": "", "enrollment_id": "", "department_id": "", "user_role": "",
                    "enrichment_missing": ["user", "enrollment"]}
    assert rows[0] == known
    assert rows[1] == unknown_user
    assert rows[2] == {**known, "course_id": "", "class_id": "", "enrollment_id": "", "content_type": "game",
                       "enrichment_missing": ["content"]}
    assert rows[3] == {**known, "score": 90.0, "duration_ms": 5}
    assert rows[4] == {**unknown_user, "enrichment_missing": ["user", "enrollment"]}, "another tenant's user is unknown"
    assert rows[5] == {**known, "course_id": "crs_sent", "class_id": "", "enrollment_id": "", "content_type": "quiz",
                       "enrichment_missing": ["enrollment"]}
    assert rows[6]["course_id"] == "['not', 'an', 'id']"
    assert rows[7] == unknown_user


def test_a_shared_batch_enriches_exactly_as_one_event_at_a_time() -> None:
    events = _mixed()
    together = EventBatch(1, REFERENCE)
    together.add(events, "m")
    one_by_one = []
    for event in events:
        alone = EventBatch(1, REFERENCE)
        alone.add([event], "m")
        one_by_one.extend(_rows(alone))
    assert _rows(together) == one_by_one


def test_envelope_columns_are_the_events_fields() -> None:
    event = accepted(
        new_event(organization_id=ORG, timestamp="2024-12-30T12:00:00.000+02:00", is_late=True, client_ip="10.1.2.0"),
        received_at="2026-01-27T14:30:46",
    )
    batch = EventBatch(7, REFERENCE)
    batch.add([event], "m")
    [row] = _rows(batch)
    assert row["timestamp"] == datetime(2024, 12, 30, 10, tzinfo=UTC)
    assert row["received_at"] == datetime(2026, 1, 27, 14, 30, 46, tzinfo=UTC), "no offset means UTC"
    assert (row["is_late"], row["client_ip"], row["platform"], row["retention_days"], row["_version"]) == (True, "10.1.2.0", "desktop", 2555, 7)
    assert row["properties"] == '{"game_id":"G-01542","stage_id":"G-01542-quiz","score":87,"max_score":100,"passed":true}'
    assert (row["event_category"], row["is_error"]) == ("learning_progress", False)


def test_a_message_with_a_bad_event_adds_nothing() -> None:
    batch = EventBatch(1, REFERENCE)
    batch.add([_event("usr_known", "stg_1")], "good")
    no_timestamp = _event("usr_known", "stg_1")
    del no_timestamp["timestamp"]
    with pytest.raises(KeyError):
        batch.add([_event("usr_known", "stg_1"), no_timestamp], "bad")
    with pytest.raises(AttributeError):
        batch.add([{**_event("usr_known", "stg_1"), "properties": ["not", "an", "object"]}], "bad")
    assert len(_rows(batch)) == 1 == len(batch.routes)


def test_a_message_arrow_cannot_convert_is_left_out_and_the_rest_kept_in_step() -> None:
    batch = EventBatch(1, REFERENCE)
    error = _event("usr_known", "stg_1")
    error["event_type"] = "javascript_error"
    batch.add([_event("usr_known", "stg_1"), error], "first")
    batch.add([_event("usr_known", "stg_1"), {**_event("usr_known", "stg_1"), "retention_days": 10**6}], "too long")
    batch.add([{**_event("usr_known", "stg_1"), "timestamp": "yesterday"}], "not a time")
    batch.add([_event("usr_known", "stg_1", score=1), error], "last")

    table, unconvertible = batch.to_arrow()
    assert [message for message, _reason in unconvertible] == ["too long", "not a time"]
    assert table.num_rows == 4 == len(batch.routes)
    assert table["is_error"].to_pylist() == [False, True, False, True]
    assert batch.alert_events == [error, error]
    assert table["score"].to_pylist() == [50.0, 50.0, 1.0, 50.0]


def test_rows_go_to_the_table_of_their_category() -> None:
    batch = EventBatch(1, REFERENCE)
    types = ["game_stage_complete", "page_load_time", "javascript_error", "subscription_created", "page_view"]
    batch.add([{**_event("usr_known", "stg_1"), "event_type": t} for t in types], "m")
    table, _ = batch.to_arrow()
    by_table = {name: rows["event_type"].to_pylist() for name, rows in rows_by_table(table, batch.routes).items()}
    assert by_table == {
        EVENTS_TABLE: ["game_stage_complete", "page_view"],
        PERF_TABLE: ["page_load_time", "javascript_error"],
        BI_TABLE: ["subscription_created"],
    }
    assert [event["event_type"] for event in batch.alert_events] == ["javascript_error"]


def test_analytics_counts_a_batch_per_entity() -> None:
    batch = EventBatch(1, REFERENCE)
    batch.add([_event("usr_known", "stg_1", score=60, assessment_id="asm_1"), _event("usr_known", "stg_1", score=81)], "m1")
    later = accepted(new_event(organization_id=ORG, user_id="usr_known", timestamp="2026-02-01T00:00:00.000Z", properties={}))
    batch.add([later, _event("", "stg_1")], "m2")
    table, _ = batch.to_arrow()
    coalescer = AnalyticsCoalescer()
    coalescer.observe(table)
    coalescer.observe(table)

    updates = {(u["entityType"], u["entityId"]): u["metrics"] for u in coalescer.drain()}
    assert set(updates) == {("user", "usr_known"), ("course", "crs_1"), ("assessment", "asm_1")}
    assert updates[("user", "usr_known")] == {
        "events": 6, "eventTypes": ["game_stage_complete"], "timeSpentMs": 4000,
        "lastEventAt": "2026-02-01T00:00:00.000+00:00", "scoredEvents": 4, "averageScore": 70.5,
    }
    assert updates[("course", "crs_1")]["events"] == 6
    assert updates[("assessment", "asm_1")]["averageScore"] == 60
    assert coalescer.drain() == []
