"""`lms-events up` as a user runs it: serves, drains on SIGTERM, leaves no children behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lms_events import embedded
from tests.support import new_event, unique_org

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


def _post(url: str, payload: object, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


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


@pytest.mark.slow
def test_up_serves_drains_on_sigterm_and_stops_children(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    gateway_port = embedded.free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_URL")}
    env.update(
        LMS_EVENTS_DATA_DIR=str(data_dir),
        LMS_EVENTS_GATEWAY_PORT=str(gateway_port),
        LMS_EVENTS_EMBEDDED_KAFKA_PORT="0",
        LMS_EVENTS_LOG_FORMAT="json",
    )
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "lms_events.cli", "up"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{gateway_port}"
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while _get_status(f"{base}/health") != 200:
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "lms-events up did not become healthy\n" + log_path.read_text()[-3000:]
            time.sleep(0.2)
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

        # SIGTERM at once: the drain must still land every accepted event.
        process.send_signal(signal.SIGTERM)
        assert process.wait(STOP_DEADLINE_S) == 0, log_path.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert not [pid for pid in children if _alive(pid)], "children outlived lms-events up"
    assert _count_events(data_dir, org) == 50
    assert "drained" in log_path.read_text()
