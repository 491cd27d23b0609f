"""`up` is ready when its stream worker is: /health says `starting` (503) until the worker
has joined its group, and the banner comes after that too."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lms_events import embedded
from tests.test_up_command import START_DEADLINE_S, _kill, _stop_up, _up_env


def _health(base: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


@pytest.mark.slow
def test_health_is_ok_only_once_the_stream_worker_is_ready(tmp_path: Path) -> None:
    env = _up_env(tmp_path / "data", embedded.free_port())
    log_path = tmp_path / "up.log"
    base = f"http://127.0.0.1:{env['LMS_EVENTS_GATEWAY_PORT']}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "lms_events.cli", "up"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        seen: list[str] = []
        deadline = time.monotonic() + START_DEADLINE_S
        status, body = _health(base)
        while status != 200:
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            if body:
                seen.append(body["status"])
                assert status == 503 and body["components"]["stream_worker"] == "starting", body
            time.sleep(0.05)
            status, body = _health(base)
        # The first 200 comes after the worker joined, and with the banner.
        text = log_path.read_text()
        assert "stream_worker_ready" in text and "lms-events is up" in text
        assert body["components"] == {"broker": "ok", "redis": "ok", "clickhouse": "ok", "stream_worker": "ok"}
        assert "sink_last_success" in body
        assert "starting" in seen, "the gateway listened before the worker was ready, and said so"
        _stop_up(process, log_path)
    finally:
        _kill(process)
