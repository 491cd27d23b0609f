"""The path a new user takes: `python3 dev.py lms-events ...`, help that names the
environment, the README's curl example (a fresh event each run), `lms-events sql`
through the running `up`, and `keys list` refusing a data dir that holds nothing.

`check_newcomer_path` needs a running `up`; tests/test_up_command.py calls it on
the `up` it already runs (an `up` takes ~10 s to start on the 2-core machine).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from lms_events.cli import _parser
from lms_events.cli_help import ENVIRONMENT, EVERY_COMMAND
from lms_events.settings import env_names

ROOT = Path(__file__).resolve().parent.parent
SQL_DEADLINE_S = 30.0


def _subcommands(parser) -> dict:  # type: ignore[no-untyped-def]
    return next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices


def test_every_command_names_its_options_and_environment_in_its_help() -> None:
    parser = _parser()
    known = set(env_names().values())
    commands = _subcommands(parser)
    assert set(ENVIRONMENT) == set(commands), "every command says which variables it reads"
    for command, names in ENVIRONMENT.items():
        assert set(names) <= known, f"{command}: not settings: {set(names) - known}"
        help_text = commands[command].format_help()
        for name in (*names, *EVERY_COMMAND):
            assert name in help_text, f"`lms-events {command} --help` does not mention {name}"
    keys_list = _subcommands(commands["keys"])["list"].format_help()
    assert "--org" in keys_list and "CLICKHOUSE_URL" in keys_list and "LMS_EVENTS_DATA_DIR" in keys_list
    sql = commands["sql"].format_help()
    assert all(option in sql for option in ("--org", "--format", "--url", "LMS_EVENTS_JWT_SECRET"))
    top = parser.format_help()
    assert "sql" in top and "KAFKA_BOOTSTRAP_SERVERS" in top and "LMS_EVENTS_DATA_DIR" in top


def _lms_events(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lms_events.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def _bare_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_URL", "REDIS_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return {**env, **extra}


def test_keys_list_refuses_a_data_dir_without_a_product(tmp_path: Path) -> None:
    empty = tmp_path / "not-here"
    done = _lms_events(_bare_env(LMS_EVENTS_DATA_DIR=str(empty)), "keys", "list")
    assert done.returncode == 2, done
    assert "LMS_EVENTS_DATA_DIR" in done.stderr and "holds no lms-events data" in done.stderr, done.stderr
    assert not empty.exists(), "the refusal created the data dir"
    # `sql` with nothing running says so, and names where it looked.
    done = _lms_events(_bare_env(LMS_EVENTS_DATA_DIR=str(empty)), "sql", "SELECT 1")
    assert done.returncode == 2 and "no `lms-events up` runs" in done.stderr and str(empty) in done.stderr, done.stderr


def test_dev_py_runs_any_lms_events_command_from_the_venv(tmp_path: Path) -> None:
    """dev.py in a checkout whose .venv is installed (its stamp matches pyproject.toml):
    `python3 dev.py lms-events ARGS` runs .venv/bin/lms-events ARGS, nothing else."""
    checkout = tmp_path / "checkout"
    bin_dir = checkout / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("dev.py", "pyproject.toml"):
        (checkout / name).write_bytes((ROOT / name).read_bytes())
    (bin_dir / "python").symlink_to(sys.executable)
    fake = bin_dir / "lms-events"
    fake.write_text("#!/bin/sh\necho \"lms-events $*\"\n")
    fake.chmod(0o755)
    spec = importlib.util.spec_from_file_location("dev_under_test", checkout / "dev.py")
    assert spec is not None and spec.loader is not None
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    (checkout / ".venv" / ".lms-events-installed").write_text(dev._fingerprint())
    done = subprocess.run(
        [sys.executable, str(checkout / "dev.py"), "lms-events", "keys", "list", "--org", "demo-org"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    assert done.stdout.strip() == "lms-events keys list --org demo-org"


# With a running `up` (called from tests/test_up_command.py) ------------------------


def readme_curl_example() -> str:
    """The README's first `curl .../v1/batch` block, as a user copies it."""
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if "/v1/batch" in b and "demo_write_key" in b)
    return block


def _metrics(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples
    }


def check_newcomer_path(env: dict[str, str], base: str, data_dir: Path, tmp_path: Path, log_path: Path) -> None:
    """Against a running `up` with this env (JSON logs to `log_path`): the README's curl example
    twice (both `accepted`), then `lms-events sql` sees both events, /metrics counted them,
    and the log line of each request names its request id and nothing personal."""
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
    accepted = ("lms_events_intake_events_total", (("event_type", "game_stage_complete"), ("status", "accepted")))
    before = _metrics(base).get(accepted, 0.0)
    script = readme_curl_example().replace("http://127.0.0.1:8080", base).replace(
        ".lms-events/demo_write_key", str(data_dir / "demo_write_key")
    )
    ids = []
    for _ in range(2):
        done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)["results"][0]
        assert result["status"] == "accepted", result
        ids.append(result["event_id"])
    assert ids[0] != ids[1]
    assert _metrics(base).get(accepted, 0.0) - before == 2

    query = "SELECT count() AS n FROM events WHERE event_id IN ('{}', '{}')".format(*ids)
    deadline = time.monotonic() + SQL_DEADLINE_S
    while True:
        done = _lms_events(env, "sql", "--org", "demo-org", query, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        if done.stdout.splitlines() == ['"n"', "2"]:
            break
        assert time.monotonic() < deadline, f"lms-events sql never saw both events: {done.stdout!r}"
        time.sleep(0.2)
    as_json = _lms_events(env, "sql", "--format", "json", "SELECT count() AS n FROM events", cwd=tmp_path)
    assert as_json.returncode == 0 and int(json.loads(as_json.stdout)["data"][0]["n"]) >= 2
    refused = _lms_events(env, "sql", "DROP TABLE events", cwd=tmp_path)
    assert refused.returncode == 2 and "HTTP 4" in refused.stderr, refused.stderr

    samples = _metrics(base)
    assert samples.get(("lms_events_sink_batch_rows_count", (("table", "event_loads"),)), 0) >= 1
    assert ("lms_events_reports_queue_messages", (("queue", "delayed"),)) in samples

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    ingested = [line for line in lines if line.get("event") == "batch_ingested"]
    assert len(ingested) >= 2
    for line in ingested:
        assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"]), line
        assert not {"user_id", "client_ip", "ip", "event_id"} & set(line), line
