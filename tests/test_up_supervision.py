"""`up` supervises what it started, under load, in one run:

- valkey killed -9: started again on its port with its append-only file (a dedup
  claim made before is still there);
- the broker killed -9 and its port taken, so it cannot come back: /health says
  degraded, posts answer 503 at once (not after the 5 s publish timeout), the log
  stays quiet; the port freed: the broker is back and /health is 200 again;
- broker and valkey both killed and unrestartable: SIGTERM stops `up` within a
  bound, and the next start stores every event that was answered `accepted`.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from ingest.dedup import dedup_key
from lms_events import embedded
from tests.support import new_event
from tests.test_up_command import _children, _kill, _post, _redis_url_of, _start_up, _up_env
from tests.test_up_durability import Load, _assert_none_lost, _restart_and_stop, _stored_event_ids
from tests.test_up_ready import _health

DEADLINE_S = 60
# SIGTERM with the broker and valkey dead: gateway (publisher flush, closes) + stream worker stop.
STOP_BOUND_S = 60
FAST_503_S = 1.0


def _pid_of(up_pid: int, marker: bytes) -> int:
    found = {p: Path(f"/proc/{p}/cmdline").read_bytes() for p in _children(up_pid)}
    pids = [p for p, cmdline in found.items() if marker in cmdline.split(b"\0")[0]]
    assert len(pids) == 1, found
    return pids[0]


def _broker_port(pid: int) -> int:
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return int(cmdline[cmdline.index(b"--listener-url") + 1].decode().rsplit(":", 1)[1])


def _kill_and_take(pid: int, port: int) -> socket.socket:
    os.kill(pid, signal.SIGKILL)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    deadline = time.monotonic() + 5
    while True:  # the dead listener's port is free once the kernel closed it
        try:
            sock.bind(("127.0.0.1", port))
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.001)
    sock.listen(1)
    return sock


def _until(condition, what: str, log_path: Path, timeout: float = DEADLINE_S):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what} within {timeout}s\n" + log_path.read_text()[-3000:]
        time.sleep(0.1)
    return result


@pytest.mark.slow
def test_up_restarts_valkey_and_the_broker_answers_503_fast_and_stops_bounded(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _up_env(data_dir, embedded.free_port())
    log_path = tmp_path / "up.log"
    process, base = _start_up(env, log_path)
    key = (data_dir / "demo_write_key").read_text().strip()
    try:
        with Load(base, key) as load:
            # valkey: a claim fsynced to its append-only file survives a kill -9.
            event = new_event(organization_id="demo-org")
            status, _ = _post(f"{base}/v1/batch", [event], key)
            assert status == 200
            load.posted.add(event["event_id"])
            valkey = redis.Redis.from_url(_redis_url_of(data_dir))
            assert valkey.execute_command("WAITAOF", 1, 0, 5000)[0] == 1
            killed = _pid_of(process.pid, b"valkey")
            os.kill(killed, signal.SIGKILL)
            _until(lambda: "valkey_restarted" in log_path.read_text(), "valkey restarted", log_path)
            assert _pid_of(process.pid, b"valkey") != killed
            assert valkey.exists(dedup_key("demo-org", event["event_id"])) == 1
            valkey.close()

            # The broker, dead and unrestartable while its port is taken.
            broker = _pid_of(process.pid, b"tansu")
            blocker = _kill_and_take(broker, _broker_port(broker))
            try:
                status, body = _until(lambda: (h := _health(base))[0] == 503 and h, "health degraded", log_path)
                assert body["status"] == "degraded" and body["components"]["broker"] == "unavailable", body
                lines_before = len(log_path.read_text().splitlines())
                started = time.monotonic()
                timings = []
                for _ in range(20):
                    t0 = time.monotonic()
                    status, body = _post(f"{base}/v1/batch", [refused := new_event(organization_id="demo-org")], key)
                    load.posted.add(refused["event_id"])
                    timings.append(time.monotonic() - t0)
                    assert status == 503, body
                while time.monotonic() - started < 5:  # the load goes on meanwhile
                    time.sleep(0.1)
                lines_per_s = (len(log_path.read_text().splitlines()) - lines_before) / (time.monotonic() - started)
                print(f"503 in max {max(timings) * 1000:.0f} ms; {lines_per_s:.1f} log lines/s while the broker is down")
                assert max(timings) < FAST_503_S
                assert lines_per_s < 10, log_path.read_text()[-3000:]
            finally:
                blocker.close()
            _until(lambda: _health(base)[0] == 200, "health back to 200 once the broker could restart", log_path, 90)
            assert "broker_restart_failed" in log_path.read_text()
            accepted_then = len(load.accepted)
            _until(lambda: len(load.accepted) > accepted_then + 200, "posts accepted again", log_path)

            # Both dead for good, then SIGTERM.
            broker, valkey_pid = _pid_of(process.pid, b"tansu"), _pid_of(process.pid, b"valkey")
            blockers = [_kill_and_take(broker, _broker_port(broker)), _kill_and_take(valkey_pid, urlsplit(_redis_url_of(data_dir)).port)]
        try:
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(STOP_BOUND_S)
            print(f"SIGTERM with broker and valkey dead: stopped in {time.monotonic() - started:.1f} s")
        finally:
            for blocker in blockers:
                blocker.close()
    finally:
        _kill(process)
    assert "drain_skipped" in log_path.read_text()
    assert any((data_dir / "spool").glob("*.spool")), "the spool keeps what the dead broker held"
    _restart_and_stop(env, tmp_path)
    _assert_none_lost(load, _stored_event_ids(data_dir))
