"""A 200 means durable on the embedded default too: kill -9 the broker or the whole `up`
under load, start `up` again on the same data dir, and every event answered `accepted`
is in ClickHouse `events` (exact counts, by event id)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lms_events import embedded
from tests.support import new_event
from tests.test_up_command import _children, _kill, _start_up, _stop_up, _up_env

BATCH_EVENTS = 10
# ~400 events/s: a batch every 25 ms.
BATCH_INTERVAL_S = 0.025
ACCEPTED_BEFORE_KILL = 1_500
LOAD_DEADLINE_S = 30
# Restarting the broker replaces the stream worker; the old one takes ~20 s to stop.
RESTART_DEADLINE_S = 60


class Load:
    """Posts batches of fresh events from a thread and keeps the ids answered `accepted`."""

    def __init__(self, base: str, key: str, *, bad_every: int = 0) -> None:
        """`bad_every`: every that many batches one event of it breaks a rule (kept in `rejected`)."""
        self.base, self.key, self.bad_every = base, key, bad_every
        self.accepted: set[str] = set()
        self.rejected: set[str] = set()
        self.posted: set[str] = set()
        self.answers: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        batches = 0
        while not self._stop.is_set():
            events = [new_event(organization_id="demo-org") for _ in range(BATCH_EVENTS)]
            batches += 1
            if self.bad_every and batches % self.bad_every == 0:
                events[0]["timestamp"] = "yesterday"
            self.posted.update(e["event_id"] for e in events)
            status, body = self._post(events)
            self.answers[status] = self.answers.get(status, 0) + 1
            if status == 200:
                self.accepted.update(r["event_id"] for r in body["results"] if r["status"] == "accepted")
                self.rejected.update(r["event_id"] for r in body["results"] if r["status"] == "rejected")
            self._stop.wait(BATCH_INTERVAL_S)

    def _post(self, events: list[dict]) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"{self.base}/v1/batch",
            data=json.dumps({"batch": events}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, {}
        except OSError:  # `up` was killed: no answer, nothing promised
            return 0, {}


def _stored_event_ids(data_dir: Path, table: str = "events") -> set[str]:
    # chDB allows one data dir per process: read it from a fresh one, `up` stopped.
    script = (
        "from chdb import session; "
        f"s = session.Session({str(data_dir / 'clickhouse')!r}); "
        f"print(s.query(\"SELECT event_id FROM lms_events.{table} FINAL WHERE organization_id = 'demo-org'\", 'CSV'))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    return {line.strip().strip('"') for line in out.stdout.splitlines() if line.strip()}


def _wait_truncating(data_dir: Path, load: Load) -> None:
    """Until the sink has stored and committed enough that `up` deleted the run's first
    spool segment: the kill then hits a spool that is being truncated behind the sink."""
    first = data_dir / "spool" / f"{1:020d}.spool"
    deadline = time.monotonic() + LOAD_DEADLINE_S
    while first.exists() or len(load.accepted) < ACCEPTED_BEFORE_KILL:
        assert time.monotonic() < deadline, f"the spool was not truncated; {len(load.accepted)} accepted"
        time.sleep(0.05)


def _broker_pid(up_pid: int) -> int:
    # argv[0] only: the other children's arguments may hold the data dir's path (valkey --dir).
    (pid,) = [p for p in _children(up_pid) if b"tansu" in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0]]
    return pid


def _restart_and_stop(env: dict[str, str], tmp_path: Path) -> str:
    """`up` again on the same data dir (it replays its spool before serving), then a clean stop."""
    log_path = tmp_path / "up-again.log"
    process, _ = _start_up(env, log_path)
    try:
        _stop_up(process, log_path)
    finally:
        _kill(process)
    return log_path.read_text()


def _assert_none_lost(load: Load, stored: set[str]) -> None:
    lost = load.accepted - stored
    print(f"accepted {len(load.accepted)}, stored {len(stored)}, lost {len(lost)}, answers {load.answers}")
    assert not lost, f"{len(lost)} of {len(load.accepted)} accepted events are not stored"
    assert stored <= load.posted, "stored events nobody posted"


@pytest.mark.slow
def test_kill_9_of_up_under_load_loses_no_accepted_event(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _up_env(data_dir, embedded.free_port())
    process, base = _start_up(env, tmp_path / "up.log")
    try:
        with Load(base, (data_dir / "demo_write_key").read_text().strip()) as load:
            _wait_truncating(data_dir, load)
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    finally:
        _kill(process)
    assert any((data_dir / "spool").glob("*.spool")), "the killed run left no spool to replay"

    log = _restart_and_stop(env, tmp_path)
    assert "spool_replayed" in log and "spool_emptied" in log
    assert not any((data_dir / "spool").glob("*.spool")), "a clean stop leaves the spool empty"
    _assert_none_lost(load, _stored_event_ids(data_dir))


@pytest.mark.slow
def test_kill_9_of_the_broker_under_load_loses_no_accepted_event(tmp_path: Path) -> None:
    """`up` restarts its broker, gives it what the spool holds, and goes on: a clean stop
    afterwards drains everything, so the stream worker resumed on the new broker too."""
    data_dir = tmp_path / "data"
    env = _up_env(data_dir, embedded.free_port())
    log_path = tmp_path / "up.log"
    process, base = _start_up(env, log_path)
    try:
        with Load(base, (data_dir / "demo_write_key").read_text().strip()) as load:
            _wait_truncating(data_dir, load)
            killed = _broker_pid(process.pid)
            os.kill(killed, signal.SIGKILL)
            deadline = time.monotonic() + RESTART_DEADLINE_S
            while "broker_restarted" not in log_path.read_text():
                assert time.monotonic() < deadline, "up did not restart its broker\n" + log_path.read_text()[-3000:]
                time.sleep(0.05)
            assert _broker_pid(process.pid) != killed
            after_restart = len(load.accepted) + ACCEPTED_BEFORE_KILL // 3
            while len(load.accepted) < after_restart:
                assert time.monotonic() < deadline, f"posts are not accepted again; answers {load.answers}"
                time.sleep(0.05)
        _stop_up(process, log_path)
    finally:
        _kill(process)
    assert "broker_died" in log_path.read_text()
    _assert_none_lost(load, _stored_event_ids(data_dir))
