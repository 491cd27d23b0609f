"""Late reference data: bulk load, backfill (direct and through the admin API), resume."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from lms_events.clickhouse import ClickHouseStore
from lms_events.instance import Instance, new_admin_token, stream_admin
from lms_events.runtime import run_reference_load
from lms_events.settings import Settings
from streams.backfill import BackfillScope, Progress, run_backfill
from streams.reference_load import ReferenceFileError
from tests.support import (
    SignedCounts,
    accepted,
    eventually,
    new_event,
    produce_events,
    reference_entity,
    rows_for_org,
    start_gateway,
    unique_org,
    write_jsonl,
)

COLUMNS = "event_id, course_id, class_id, enrollment_id, department_id, user_role, enrichment_missing, _version"


def _late_story(org: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    suffix = uuid.uuid4().hex[:8]
    ids = {name: f"{name}_{suffix}" for name in ("user", "course", "class", "enrollment", "department", "stage")}
    domain_events = [
        {"eventType": "UserCreated", "organizationId": org, "userId": ids["user"], "role": "student", "departmentId": ids["department"]},
        {"eventType": "CourseCreated", "organizationId": org, "courseId": ids["course"], "contents": [{"stageId": ids["stage"], "contentType": "game"}]},
        {"eventType": "UserEnrolled", "organizationId": org, "userId": ids["user"], "courseId": ids["course"], "classId": ids["class"], "enrollmentId": ids["enrollment"]},
    ]
    return ids, domain_events


def _plays(org: str, ids: dict[str, str], count: int) -> list[dict[str, Any]]:
    return [
        accepted(new_event(organization_id=org, user_id=ids["user"], context={}, properties={"stage_id": ids["stage"], "score": 50, "duration_ms": 1000}))
        for _ in range(count)
    ]


async def _stored_with_gaps(store: ClickHouseStore, bootstrap: str, count: int) -> tuple[str, dict[str, str], list[dict[str, Any]]]:
    """Events of a learner nobody told us about yet, stored with their gaps."""
    org = unique_org()
    ids, domain_events = _late_story(org)
    await produce_events(bootstrap, _plays(org, ids, count))
    stored = await eventually(lambda: rows_for_org(store, "events", org, COLUMNS), lambda rows: len(rows) == count)
    assert all(sorted(r["enrichment_missing"]) == ["content", "user"] for r in stored)
    return org, ids, domain_events


async def _load_reference(
    settings: Settings, store: ClickHouseStore, tmp_path: Path, org: str, ids: dict[str, str], domain_events: list[dict[str, Any]]
) -> None:
    sent = await run_reference_load(settings, write_jsonl(tmp_path / "reference.jsonl", domain_events))
    assert sent == len(domain_events)
    await eventually(lambda: reference_entity(store, org, "enrollment", f"{ids['user']}/course/{ids['course']}"), bool)
    await eventually(lambda: reference_entity(store, org, "content", f"stage/{ids['stage']}"), bool)
    await eventually(lambda: reference_entity(store, org, "user", ids["user"]), bool)


def _assert_enriched(rows: list[dict[str, Any]], ids: dict[str, str]) -> None:
    for row in rows:
        assert (row["course_id"], row["class_id"], row["enrollment_id"], row["department_id"], row["user_role"]) == (
            ids["course"], ids["class"], ids["enrollment"], ids["department"], "student",
        )
        assert row["enrichment_missing"] == []


async def _content_usage(store: ClickHouseStore, org: str) -> dict[str, int]:
    """course -> events counted in content_usage_daily for the organization."""
    rows = await store.query(
        "SELECT course_id, sum(events) AS n FROM content_usage_daily WHERE organization_id = {o:String} GROUP BY course_id", {"o": org}
    )
    return {row["course_id"]: int(row["n"]) for row in rows}


async def test_late_reference_data_is_filled_by_backfill(
    stream_app: Any, store: ClickHouseStore, bootstrap: str, settings: Settings, tmp_path: Path
) -> None:
    org, ids, domain_events = await _stored_with_gaps(store, bootstrap, 4)
    await _load_reference(settings, store, tmp_path, org, ids, domain_events)

    progress = [p async for p in run_backfill(store, BackfillScope(organization_id=org))]

    assert progress[-1].finished and progress[-1].done == 4 and progress[0].total == 4
    rows = await rows_for_org(store, "events", org, COLUMNS)
    assert len(rows) == 4
    _assert_enriched(rows, ids)
    replaced = await store.query("SELECT count() AS n FROM events FINAL WHERE organization_id = {o:String}", {"o": org})
    assert replaced[0]["n"] == 4


async def test_backfill_moves_what_the_read_models_counted_to_the_new_course(
    stream_app: Any, store: ClickHouseStore, bootstrap: str, settings: Settings, tmp_path: Path, signed_counts: SignedCounts
) -> None:
    org, ids, domain_events = await _stored_with_gaps(store, bootstrap, 1)
    assert await eventually(lambda: signed_counts.of(org), bool) == {"": (1, 1000)}
    await _load_reference(settings, store, tmp_path, org, ids, domain_events)

    done = [p async for p in run_backfill(store, BackfillScope(organization_id=org))]

    assert done[-1].finished and done[-1].done == 1
    assert await signed_counts.of(org) == {"": (0, 0), ids["course"]: (1, 1000)}
    # the per-learner read model of content-usage (sql/0031) moved it too
    assert await _content_usage(store, org) == {"": 0, ids["course"]: 1}
    _assert_enriched(await rows_for_org(store, "events", org, COLUMNS), ids)
    # Re-enriching everything again changes nothing, so nothing is written or counted.
    again = [p async for p in run_backfill(store, BackfillScope(organization_id=org, everything=True))]
    assert again[-1].done == 1
    assert await signed_counts.of(org) == {"": (0, 0), ids["course"]: (1, 1000)}
    assert await _content_usage(store, org) == {"": 0, ids["course"]: 1}
    inserted = await store.query("SELECT count() AS n FROM events WHERE organization_id = {o:String}", {"o": org})
    assert inserted[0]["n"] <= 2, "the stream's row and at most one re-enriched one (a merge may have joined them)"


async def test_a_replay_after_the_reference_data_arrived_moves_the_event_as_backfill_would(
    stream_app: Any, store: ClickHouseStore, bootstrap: str, settings: Settings, tmp_path: Path, signed_counts: SignedCounts
) -> None:
    org = unique_org()
    ids, domain_events = _late_story(org)
    [play] = _plays(org, ids, 1)
    await produce_events(bootstrap, [play])
    await eventually(lambda: signed_counts.of(org), lambda counts: counts == {"": (1, 1000)})
    await _load_reference(settings, store, tmp_path, org, ids, domain_events)

    await produce_events(bootstrap, [play])  # consumed again, now enriched

    counts = await eventually(lambda: signed_counts.of(org), lambda counts: ids["course"] in counts)
    assert counts == {"": (0, 0), ids["course"]: (1, 1000)}
    _assert_enriched(await rows_for_org(store, "events", org, COLUMNS), ids)


async def test_interrupted_backfill_resumes_after_its_last_batch(
    stream_app: Any, store: ClickHouseStore, bootstrap: str, settings: Settings, tmp_path: Path
) -> None:
    org, ids, domain_events = await _stored_with_gaps(store, bootstrap, 5)
    await _load_reference(settings, store, tmp_path, org, ids, domain_events)
    scope = BackfillScope(organization_id=org)

    first: list[Progress] = []
    async for progress in run_backfill(store, scope, batch_rows=2):
        first.append(progress)
        if progress.done >= 2:
            break  # interrupted after one batch
    resumed = [p async for p in run_backfill(store, scope, batch_rows=2)]

    assert first[-1].done == 2
    assert resumed[0].resumed_from == 2 and resumed[0].total == 5
    assert resumed[-1].finished and resumed[-1].done == 5
    _assert_enriched(await rows_for_org(store, "events", org, COLUMNS), ids)
    again = [p async for p in run_backfill(store, scope)]
    assert again[-1].done == 0, "a finished job starts over, and nothing is missing any more"


async def test_backfill_runs_inside_the_running_instance_through_the_admin_api(
    stream_app: Any, store: ClickHouseStore, bootstrap: str, settings: Settings, tmp_path: Path
) -> None:
    org, ids, domain_events = await _stored_with_gaps(store, bootstrap, 3)
    await _load_reference(settings, store, tmp_path, org, ids, domain_events)
    token = new_admin_token()
    runner, url = await start_gateway(settings, store, admin_token=token)
    try:
        instance = Instance(pid=0, gateway_url=url, kafka_bootstrap_servers=bootstrap, redis_url="", admin_token=token)
        lines = [line async for line in stream_admin(instance, "backfill", BackfillScope(organization_id=org).as_json())]
    finally:
        await runner.cleanup()

    assert lines[-1]["finished"] is True and lines[-1]["done"] == 3
    assert {"done", "total", "rate", "eta_s"} <= set(lines[0])
    _assert_enriched(await rows_for_org(store, "events", org, COLUMNS), ids)


async def test_reference_file_with_a_bad_line_loads_nothing(settings: Settings, tmp_path: Path) -> None:
    org = unique_org()
    _, domain_events = _late_story(org)
    path = write_jsonl(tmp_path / "bad.jsonl", [domain_events[0], {"eventType": "UserEnrolled", "userId": "u"}])
    with pytest.raises(ReferenceFileError) as info:
        await run_reference_load(settings, path)
    assert "line 2" in str(info.value) and "courseId" in str(info.value)


def _cli(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CLICKHOUSE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    env["LMS_EVENTS_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "lms_events.cli", *args], env=env, capture_output=True, text=True, timeout=120)


def test_backfill_command_without_a_running_instance_opens_the_store_itself(tmp_path: Path) -> None:
    # Another process, so it may own a chDB data dir of its own.
    done = _cli(["backfill", "--org", unique_org(), "--since", "2026-01-01"], tmp_path / "data")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "backfill done: 0 events re-enriched" in done.stdout
    assert (tmp_path / "data" / "clickhouse").is_dir()


def test_reference_load_command_names_the_bad_line_and_fails(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"eventType": "CourseCreated"}])
    failed = _cli(["reference", "load", str(path)], tmp_path / "data")
    assert failed.returncode == 2
    assert "line 1" in failed.stderr and "courseId" in failed.stderr
