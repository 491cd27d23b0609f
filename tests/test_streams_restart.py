"""The stream worker as its own process: kill -9 mid-load, restarts, reference data across restarts.

Each test runs `lms-events worker` as a subprocess with its own broker and
its own chDB data dir (one data dir per process), and reads the results
from a fresh process once the worker stopped.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition

from lms_events import embedded
from lms_events.settings import Settings
from lms_events.topics import DOMAIN_TOPICS, RAW_EVENTS, STREAM_APP_ID, ensure_topics
from tests.support import accepted, eventually, new_event, produce, produce_domain_events, unique_org

WORKER_DEADLINE_S = 90.0
PARTITIONS = 2
MESSAGES_PER_SECOND = 100
EVENTS_PER_MESSAGE = 25


@pytest_asyncio.fixture
async def own_broker(tmp_path: Path) -> AsyncIterator[embedded.ManagedProcess]:
    broker = await _broker(tmp_path / "tansu.log")
    yield broker
    broker.stop()


class Worker:
    """`lms-events worker` in a subprocess against `bootstrap`, owning `data_dir`."""

    def __init__(self, bootstrap: str, data_dir: Path, log_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "CLICKHOUSE_URL"}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            LMS_EVENTS_DATA_DIR=str(data_dir),
            LMS_EVENTS_KAFKA_PARTITIONS=str(PARTITIONS),
            LMS_EVENTS_SINK_BATCH_WITHIN_S="0.2",
            LMS_EVENTS_LOG_FORMAT="json",
        )
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lms_events.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        assert self.process.returncode in (0, -signal.SIGKILL), self.log_path.read_text()[-3000:]


async def _broker(log_path: Path) -> embedded.ManagedProcess:
    """A fresh broker with the pipeline's topics, so producing does not race the worker creating them."""
    broker = await embedded.start_tansu(embedded.free_port(), log_path)
    await ensure_topics(Settings(kafka_topic_partitions=PARTITIONS), f"127.0.0.1:{broker.port}")
    return broker


async def _committed(bootstrap: str, topics: tuple[str, ...]) -> int:
    """Offsets the stream app committed, summed over the partitions of `topics`.

    Compared with the number of messages sent, not with end offsets: Tansu
    reports the end of a partition as one past the first record of its last
    record batch, which undercounts batches of several records.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=STREAM_APP_ID, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        return sum([await consumer.committed(tp) or 0 for tp in partitions])
    finally:
        await consumer.stop()


async def _drained(bootstrap: str, topics: tuple[str, ...], messages: int) -> None:
    await eventually(lambda: _committed(bootstrap, topics), lambda done: done >= messages, timeout=WORKER_DEADLINE_S)


def _query(data_dir: Path, sql: str) -> list[dict[str, Any]]:
    # chDB allows one data dir per process: read it from a fresh one.
    script = (
        "import sys; from chdb import session; "
        f"s = session.Session({str(data_dir / 'clickhouse')!r}); "
        "sys.stdout.write(s.query(sys.argv[1], 'JSONEachRow').bytes().decode())"
    )
    out = subprocess.run([sys.executable, "-c", script, sql], capture_output=True, text=True, timeout=60, check=True)
    return [orjson.loads(line) for line in out.stdout.splitlines() if line]


async def test_kill_9_mid_load_then_restart_leaves_every_event_exactly_once(
    own_broker: embedded.ManagedProcess, tmp_path: Path
) -> None:
    bootstrap = f"127.0.0.1:{own_broker.port}"
    data_dir = tmp_path / "data"
    org = unique_org()
    sent: list[str] = []
    stop_producing = asyncio.Event()

    async def steady_load() -> None:
        while not stop_producing.is_set():
            events = [accepted(new_event(organization_id=org, session_id=f"s{len(sent)}")) for _ in range(EVENTS_PER_MESSAGE)]
            await produce(bootstrap, [(RAW_EVENTS, f"s{len(sent)}".encode(), orjson.dumps({"events": events}))])
            sent.extend(e["event_id"] for e in events)
            await asyncio.sleep(1 / MESSAGES_PER_SECOND)

    worker = Worker(bootstrap, data_dir, tmp_path / "worker-1.log")
    load = asyncio.create_task(steady_load())
    try:
        # Kill once the worker has committed some of the load while more keeps coming.
        await eventually(lambda: _committed(bootstrap, (RAW_EVENTS,)), lambda done: done > 0, timeout=WORKER_DEADLINE_S)
        worker.kill()
        committed_at_kill = await _committed(bootstrap, (RAW_EVENTS,))
        sent_at_kill = len(sent) // EVENTS_PER_MESSAGE
        worker = Worker(bootstrap, data_dir, tmp_path / "worker-2.log")
        await eventually(lambda: _committed(bootstrap, (RAW_EVENTS,)), lambda done: done > committed_at_kill, timeout=WORKER_DEADLINE_S)
        stop_producing.set()
        await load
        await _drained(bootstrap, (RAW_EVENTS,), len(sent) // EVENTS_PER_MESSAGE)
    finally:
        stop_producing.set()
        await asyncio.gather(load, return_exceptions=True)
        worker.stop()

    assert committed_at_kill < sent_at_kill, "the kill came in the middle of the load"
    [counts] = _query(
        data_dir,
        f"SELECT count() AS final, uniqExact(event_id) AS distinct_ids FROM lms_events.events FINAL WHERE organization_id = '{org}'",
    )
    assert int(counts["final"]) == int(counts["distinct_ids"]) == len(sent) == len(set(sent))


async def test_reference_data_survives_a_restart_of_worker_and_broker(tmp_path: Path) -> None:
    """The embedded broker forgets everything on restart, changelogs included: the worker
    reloads its reference tables from ClickHouse."""
    data_dir = tmp_path / "data"
    org = unique_org()
    suffix = uuid.uuid4().hex[:8]
    user, course, klass, enrollment, department, stage = (f"{n}_{suffix}" for n in ("usr", "crs", "cls", "enr", "dep", "stg"))
    domain_events = [
        {"eventType": "UserCreated", "organizationId": org, "userId": user, "role": "teacher", "departmentId": department},
        {"eventType": "CourseCreated", "organizationId": org, "courseId": course, "contents": [{"stageId": stage, "contentType": "game"}]},
        {"eventType": "UserEnrolled", "organizationId": org, "userId": user, "courseId": course, "classId": klass, "enrollmentId": enrollment},
    ]

    first_broker = await _broker(tmp_path / "tansu-1.log")
    worker = Worker(f"127.0.0.1:{first_broker.port}", data_dir, tmp_path / "worker-1.log")
    try:
        await produce_domain_events(f"127.0.0.1:{first_broker.port}", domain_events)
        await _drained(f"127.0.0.1:{first_broker.port}", DOMAIN_TOPICS, len(domain_events))
    finally:
        worker.stop()
        first_broker.stop()

    second_broker = await _broker(tmp_path / "tansu-2.log")
    bootstrap = f"127.0.0.1:{second_broker.port}"
    worker = Worker(bootstrap, data_dir, tmp_path / "worker-2.log")
    play = accepted(new_event(organization_id=org, user_id=user, context={}, properties={"stage_id": stage}))
    try:
        await produce(bootstrap, [(RAW_EVENTS, b"s", orjson.dumps({"events": [play]}))])
        await _drained(bootstrap, (RAW_EVENTS,), 1)
    finally:
        worker.stop()
        second_broker.stop()

    [row] = _query(
        data_dir,
        "SELECT course_id, class_id, enrollment_id, department_id, user_role, content_type, enrichment_missing "
        f"FROM lms_events.events FINAL WHERE event_id = '{play['event_id']}'",
    )
    assert row == {
        "course_id": course, "class_id": klass, "enrollment_id": enrollment, "department_id": department,
        "user_role": "teacher", "content_type": "game", "enrichment_missing": [],
    }
