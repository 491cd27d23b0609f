"""`lms-events up` as a user runs it: serves, drains on SIGTERM, leaves no children behind,
keeps its Redis data in its data dir and never touches the machine's Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis

from ingest.consent import consent_key
from ingest.dedup import dedup_key
from lms_events import embedded
from lms_events.instance import INSTANCE_FILE
from tests.support import new_event, unique_org
from tests.test_cli_newcomer import check_newcomer_path

START_DEADLINE_S = 90
STOP_DEADLINE_S = 120


def _get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _send(method: str, url: str, payload: object, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _post(url: str, payload: object, key: str) -> tuple[int, dict]:
    return _send("POST", url, payload, key)


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lms_events.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(p) for p in (task / "children").read_text().split())
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _count_events(data_dir: Path, organization_id: str) -> int:
    # chDB allows one data dir per process: read it from a fresh one.
    script = (
        "import sys; from chdb import session; "
        f"s = session.Session({str(data_dir / 'clickhouse')!r}); "
        "print(s.query(\"SELECT count() FROM lms_events.events FINAL WHERE organization_id = '" + organization_id + "'\", 'CSV'))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    return int(out.stdout.strip())


def _up_env(data_dir: Path, gateway_port: int) -> dict[str, str]:
    """The environment of a user with nothing configured: every server embedded."""
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_URL", "REDIS_URL")}
    env.update(
        LMS_EVENTS_DATA_DIR=str(data_dir),
        LMS_EVENTS_GATEWAY_PORT=str(gateway_port),
        LMS_EVENTS_EMBEDDED_KAFKA_PORT="0",
        LMS_EVENTS_LOG_FORMAT="json",
    )
    return env


def _start_up(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`lms-events up` in a subprocess, once /health answers 200 and it printed its
    banner (instance file written); and its gateway URL."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "lms_events.cli", "up"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{env['LMS_EVENTS_GATEWAY_PORT']}"
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while _get_status(f"{base}/health") != 200 or "lms-events is up" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "lms-events up did not become healthy\n" + log_path.read_text()[-3000:]
            time.sleep(0.2)
    except BaseException:
        _kill(process)
        raise
    return process, base


def _stop_up(process: subprocess.Popen[bytes], log_path: Path) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(STOP_DEADLINE_S) == 0, log_path.read_text()[-3000:]


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def _redis_url_of(data_dir: Path) -> str:
    return json.loads((data_dir / INSTANCE_FILE).read_text())["redis_url"]


@pytest.mark.slow
def test_up_serves_drains_on_sigterm_and_stops_children(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _up_env(data_dir, embedded.free_port())
    log_path = tmp_path / "up.log"
    process, base = _start_up(env, log_path)
    try:
        children = _children(process.pid)
        assert children, "up should run the embedded broker as a child process"

        demo_key = (data_dir / "demo_write_key").read_text().strip()
        assert demo_key in log_path.read_text(), "up prints the demo write key"
        status, _ = _post(f"{base}/v1/batch", [new_event(organization_id="demo-org")], demo_key)
        assert status == 200

        # Keys are managed while the product runs (through its admin API).
        org = unique_org()
        created = _cli(env, "keys", "create", "--org", org, "--name", "test client")
        key = created.strip().splitlines()[-1]
        key_id = created.split()[3]
        assert key.startswith("lmsk_")
        assert key_id in _cli(env, "keys", "list", "--org", org)
        status, body = _post(f"{base}/v1/batch", {"batch": [new_event(organization_id=org) for _ in range(50)]}, key)
        assert status == 200 and body["totals"]["accepted"] == 50
        status, body = _post(f"{base}/v1/batch", [new_event(organization_id="demo-org")], key)
        assert status == 200 and body["results"][0]["errors"][0]["rule"] == "organization"

        _cli(env, "keys", "revoke", key_id)
        status, body = _post(f"{base}/v1/batch", [new_event(organization_id=org)], key)
        assert status == 401 and "revoked" in body["error"]
        # The README's curl example, `lms-events sql` and /metrics on this same `up`.
        check_newcomer_path(env, base, data_dir, tmp_path, log_path)

        # SIGTERM at once: the drain must still land every accepted event.
        _stop_up(process, log_path)
    finally:
        _kill(process)

    assert not [pid for pid in children if _alive(pid)], "children outlived lms-events up"
    assert _count_events(data_dir, org) == 50
    assert "drained" in log_path.read_text()


@pytest.mark.slow
def test_up_keeps_its_redis_data_in_the_data_dir_across_a_restart(tmp_path: Path) -> None:
    """Without REDIS_URL, `up` runs its own valkey (127.0.0.1 only, AOF in the data dir):
    an event id accepted before a restart is a duplicate after it, on any port. A Redis
    answering on 127.0.0.1:6379 is someone else's: `up` writes none of its dedup or consent
    keys there and leaves what is there alone (other suites may use it meanwhile, so we
    look for our own keys, not counts)."""
    data_dir = tmp_path / "data"
    env = _up_env(data_dir, embedded.free_port())
    log_path = tmp_path / "up.log"
    event = new_event(organization_id="demo-org")
    user = f"usr_{uuid.uuid4().hex[:12]}"
    ours = [dedup_key("demo-org", event["event_id"]), consent_key("demo-org", user)]
    machine = redis.Redis(host="127.0.0.1", port=6379, db=0, socket_timeout=5) if embedded.port_open(6379) else None
    sentinel = f"lms-events-test:sentinel:{uuid.uuid4().hex}"
    if machine is not None:
        machine.set(sentinel, "untouched", ex=3600)

    process, base = _start_up(env, log_path)
    try:
        assert "(embedded valkey)" in log_path.read_text()
        valkey = redis.Redis.from_url(_redis_url_of(data_dir))
        try:
            assert valkey.config_get("bind") == {"bind": "127.0.0.1"}
            assert valkey.config_get("appendonly") == {"appendonly": "yes"}
        finally:
            valkey.close()
        key = (data_dir / "demo_write_key").read_text().strip()
        status, body = _post(f"{base}/v1/batch", [event], key)
        assert status == 200 and body["results"][0]["status"] == "accepted", body
        status, _ = _send("PUT", f"{base}/v1/consent/{user}", {"age_band": "13_to_17"}, key)
        assert status == 200
        valkey = redis.Redis.from_url(_redis_url_of(data_dir))
        try:
            assert valkey.exists(*ours) == len(ours)  # in up's own valkey ...
        finally:
            valkey.close()
        children = _children(process.pid)
        _stop_up(process, log_path)
    finally:
        _kill(process)
    assert not [pid for pid in children if _alive(pid)], "valkey or the broker outlived lms-events up"
    assert (data_dir / "valkey").is_dir()
    if machine is not None:  # ... and nowhere in the machine's Redis, whose own key is as it was
        try:
            assert machine.exists(*ours) == 0
            assert machine.get(sentinel) == b"untouched"
        finally:
            machine.delete(sentinel)
            machine.close()

    # The second run on a configured port: only the data dir carries the claim over
    # (the gateway's in-process cache of recent ids died with the first run).
    redis_port = embedded.free_port()
    log_path = tmp_path / "up-again.log"
    process, base = _start_up({**env, "LMS_EVENTS_EMBEDDED_REDIS_PORT": str(redis_port)}, log_path)
    try:
        assert _redis_url_of(data_dir) == f"redis://127.0.0.1:{redis_port}/0"
        status, body = _post(f"{base}/v1/batch", [event], key)
        assert status == 200 and body["results"][0]["status"] == "duplicate", body
        _stop_up(process, log_path)
    finally:
        _kill(process)
