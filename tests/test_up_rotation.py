"""The embedded broker's topic generations under load: `up` opens new ones and deletes old
ones only once they are fully stored, and no event answered `accepted` is lost across it,
nor any bad row (bad events rotate through generations too)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from lms_events import embedded
from tests.test_up_command import _kill, _start_up, _stop_up, _up_env
from tests.test_up_durability import Load, _assert_none_lost, _stored_event_ids

ROTATION_S = 2
DELETED_GENERATIONS = 2
DEADLINE_S = 60


def _log_events(log_path: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in log_path.read_text().splitlines() if f'"event": "{name}"' in line]


@pytest.mark.slow
def test_generations_rotate_under_load_and_lose_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _up_env(data_dir, embedded.free_port())
    env["LMS_EVENTS_TOPIC_ROTATION_S"] = str(ROTATION_S)
    log_path = tmp_path / "up.log"
    process, base = _start_up(env, log_path)
    try:
        with Load(base, (data_dir / "demo_write_key").read_text().strip(), bad_every=5) as load:
            deadline = time.monotonic() + DEADLINE_S
            while len(_log_events(log_path, "generation_deleted")) < DELETED_GENERATIONS:
                assert time.monotonic() < deadline, "no generation deleted\n" + log_path.read_text()[-3000:]
                time.sleep(0.1)
        _stop_up(process, log_path)
    finally:
        _kill(process)

    opened = {e["generation"]: e["timestamp"] for e in _log_events(log_path, "generation_opened")}
    deleted = {e["generation"]: e["timestamp"] for e in _log_events(log_path, "generation_deleted")}
    # Oldest first, each only after its successor took the traffic, the current one never.
    assert sorted(deleted) == list(range(1, len(deleted) + 1))
    for generation, at in deleted.items():
        assert opened[generation + 1] < at
    assert max(opened) not in deleted
    rotated = r"(events\.raw|intake\.outcomes|events\.rejected|consent\.records|analytics\.events|alerts)\.g\d+"
    deleted_topics = {t for e in _log_events(log_path, "generation_deleted") for t in e["topics"]}
    assert all(re.fullmatch(rotated, t) for t in deleted_topics)
    assert "events.rejected.g1" in deleted_topics and "alerts.g1" in deleted_topics
    assert not any((data_dir / "spool").glob("*.spool")), "a clean stop leaves the spool empty"
    _assert_none_lost(load, _stored_event_ids(data_dir))
    assert load.rejected, "the load posted bad events"
    assert load.rejected <= _stored_event_ids(data_dir, "rejected_events"), "every bad row is stored"
