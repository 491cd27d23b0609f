"""The API contract, checked by schemathesis against a running `lms-events up`:
every operation of /openapi.json, fed generated inputs (valid and not),
never answers 5xx, and every answer matches the document (status, content
type, body schema). Bounded: a fixed seed and a few dozen examples an
operation, so it is the same check on every run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lms_events import embedded
from tests.test_up_command import _kill, _start_up, _stop_up, _up_env

EXAMPLES = 12
SEED = 20261202
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def _schemathesis(base: str, paths: str, bearer: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    # Run in the test's own directory: schemathesis keeps a cache (.schemathesis/) where it runs.
    return subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run", f"{base}/openapi.json",
            "--include-path-regex", paths,
            "-H", f"Authorization: Bearer {bearer}",
            "-n", str(EXAMPLES), "--seed", str(SEED), "--checks", CHECKS,
            "--request-timeout", "30",
        ],
        capture_output=True, text=True, timeout=600, cwd=workdir,
    )  # fmt: skip


@pytest.mark.slow
def test_no_operation_answers_5xx_or_off_the_document(tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    process, base = _start_up(_up_env(tmp_path / "data", embedded.free_port()), log)
    try:
        banner = log.read_text()
        write_key = re.search(r"write key\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
        read_token = re.search(r"read token\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
        for paths, bearer in (("^/(v1|health)", write_key), ("^/api/v1", read_token)):
            run = _schemathesis(base, paths, bearer, tmp_path)
            assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
            assert re.search(r"\d+ generated, \d+ passed", run.stdout), run.stdout[-2000:]
        _stop_up(process, log)
    finally:
        _kill(process)
